//! Nothing acknowledged is lost: the service binary is killed with SIGKILL in the middle of a load of scans, and
//! every scan it answered is in PostgreSQL afterwards.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hc_domain::Colour;
use hc_platform::testing::eventually;
use secrecy::ExposeSecret;
use serde_json::json;

use crate::helpers::{GZ_ROOT_SEED, PSEUDONYM_KEY, claims, gz_code_key, open_policy, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_scan_survives_a_kill_9_mid_load() {
    let app = spawn_app().await;
    let device = app
        .device_at("metro-kill9", open_policy(), &["verify"])
        .await;
    let (person, _, _) = app.citizen(51).await;
    app.put_status(&person, 1, "green", 2).await;
    let code = hc_token::encode(&claims(&person, Colour::Green, 1), &gz_code_key()).expect("sign");

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port();
    let s = &app.settings.platform;
    let mut child = Command::new(env!("CARGO_BIN_EXE_verification"))
        .env("HC__SERVER__PORT", port.to_string())
        .env("HC__SERVER__WORKERS", "2")
        .env("HC__DATABASE__URL", s.database.url.expose_secret())
        .env("HC__REDIS__URL", s.redis.url.expose_secret())
        .env("HC__REDIS__KEY_PREFIX", &s.redis.key_prefix)
        .env("HC__AUTH__JWKS_URL", app.identity.jwks_url())
        .env("HC__PRIVACY__BLIND_INDEX_KEY", &app.blind_key)
        .env("HC__RATE_LIMIT__PER_IP_PER_SECOND", "0")
        .env("HC__RATE_LIMIT__PER_KEY_PER_SECOND", "0")
        .env("HC__EVENTS__CONSUMERS_ENABLED", "false")
        .env(
            "HC__VERIFICATION__OWN_KEYS_URL",
            format!("{}/v1/trust/keys", app.rendering),
        )
        .env(
            "HC__VERIFICATION__PSEUDONYM_KEYS",
            format!("1:{}", STANDARD.encode(PSEUDONYM_KEY)),
        )
        .env(
            "HC__VERIFICATION__ROOT_KEY",
            format!("gz-root:{}", STANDARD.encode(GZ_ROOT_SEED)),
        )
        .env("HC__TELEMETRY__LOG_FILTER", "error")
        .env_remove("APP_ENV")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the verification binary starts");
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    // Ready, and trusting our keys: one scan passes.
    let (http, base, device, code) = (&http, &base, &device, &code);
    eventually(
        Duration::from_secs(30),
        "the child never verified a code",
        || async move {
            let Ok(r) = http
                .post(format!("{base}/v1/verify"))
                .bearer_auth(device)
                .json(&json!({"code": code}))
                .send()
                .await
            else {
                return None;
            };
            let v: serde_json::Value = r.json().await.unwrap_or_default();
            (v["decision"] == "pass").then_some(())
        },
    )
    .await;

    let acked = Arc::new(std::sync::Mutex::new(Vec::new()));
    let deadline = Instant::now() + Duration::from_secs(8);
    let mut load = tokio::task::JoinSet::new();
    for _ in 0..32 {
        let (http, base, device, code, acked) = (
            http.clone(),
            base.clone(),
            device.clone(),
            code.clone(),
            acked.clone(),
        );
        load.spawn(async move {
            while Instant::now() < deadline {
                let Ok(r) = http
                    .post(format!("{base}/v1/verify"))
                    .bearer_auth(&device)
                    .json(&json!({"code": code}))
                    .send()
                    .await
                else {
                    return;
                };
                if r.status() != 200 {
                    // Shed (503 + Retry-After) on a busy machine: back off a little rather than spin.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
                let Ok(v) = r.json::<serde_json::Value>().await else {
                    return;
                };
                if let Some(id) = v["scan_id"]
                    .as_str()
                    .and_then(|i| i.parse::<uuid::Uuid>().ok())
                {
                    acked.lock().expect("lock").push(id);
                }
            }
        });
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    while load.join_next().await.is_some() {}

    let acked = acked.lock().expect("lock").clone();
    assert!(
        acked.len() > 100,
        "the load got going before the kill ({} acknowledged)",
        acked.len()
    );
    let stored: i64 = app
        .pool
        .get()
        .await
        .expect("db")
        .query_one(
            "SELECT count(*) FROM scan_events WHERE id = ANY($1)",
            &[&acked],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(
        stored as usize,
        acked.len(),
        "every acknowledged scan is stored"
    );
}
