//! The SMS gateway and the real-name verifier behind HTTP, against a stand-in provider on 127.0.0.1 that records
//! what it is sent.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use actix_web::{HttpRequest, HttpResponse, web};
use reqwest::StatusCode;
use serde_json::{Value, json};

use hc_platform::testing::{WAIT, eventually};

use crate::helpers::{problem, spawn_app_with, unique_person};

/// What the provider was sent: (path, authorization header, body).
#[derive(Clone, Default)]
struct Provider {
    seen: Arc<Mutex<Vec<(String, String, Value)>>>,
    down: Arc<AtomicBool>,
    /// While set, the SMS endpoint answers only once `release` is notified.
    hold: Arc<AtomicBool>,
    release: Arc<tokio::sync::Notify>,
}

impl Provider {
    fn record(&self, req: &HttpRequest, body: Value) -> bool {
        let auth = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        self.seen
            .lock()
            .expect("lock")
            .push((req.path().to_owned(), auth, body));
        !self.down.load(Ordering::SeqCst)
    }

    fn last(&self, path: &str) -> (String, Value) {
        let seen = self.seen.lock().expect("lock");
        let (_, auth, body) = seen
            .iter()
            .rev()
            .find(|(p, _, _)| p == path)
            .unwrap_or_else(|| panic!("nothing was sent to {path}"));
        (auth.clone(), body.clone())
    }
}

async fn sms(p: web::Data<Provider>, req: HttpRequest, body: web::Json<Value>) -> HttpResponse {
    if p.hold.load(Ordering::SeqCst) {
        p.release.notified().await;
    }
    if p.record(&req, body.into_inner()) {
        HttpResponse::Ok().json(json!({"message_id": "m-1"}))
    } else {
        HttpResponse::ServiceUnavailable().finish()
    }
}

async fn real_name(
    p: web::Data<Provider>,
    req: HttpRequest,
    body: web::Json<Value>,
) -> HttpResponse {
    let certified = body["ticket"] == "face-match-ok";
    if p.record(&req, body.into_inner()) {
        HttpResponse::Ok().json(json!({"certified": certified}))
    } else {
        HttpResponse::InternalServerError().finish()
    }
}

async fn start_provider() -> (String, Provider) {
    let provider = Provider::default();
    let data = web::Data::new(provider.clone());
    let server = actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .app_data(data.clone())
            .route("/sms", web::post().to(sms))
            .route("/real-name", web::post().to(real_name))
    })
    .workers(1)
    .bind(("127.0.0.1", 0))
    .expect("bind");
    let address = format!("http://{}", server.addrs()[0]);
    tokio::spawn(server.run());
    (address, provider)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codes_go_to_the_sms_provider_and_tickets_to_the_real_name_verifier() {
    let (address, provider) = start_provider().await;
    let app = spawn_app_with(|b| {
        b.set_override("identity.sms.kind", "http")
            .and_then(|b| b.set_override("identity.sms.url", format!("{address}/sms")))
            .and_then(|b| b.set_override("identity.sms.token", "sms-secret"))
            .and_then(|b| b.set_override("identity.real_name.kind", "http"))
            .and_then(|b| b.set_override("identity.real_name.url", format!("{address}/real-name")))
            .and_then(|b| b.set_override("identity.real_name.token", "rn-secret"))
            .expect("overrides")
    })
    .await;
    let (id, phone) = unique_person();
    let sent = app
        .post_json(
            "/v1/auth/otp",
            &json!({"phone": phone, "purpose": "register"}),
        )
        .await;
    assert_eq!(sent.status(), StatusCode::ACCEPTED);
    let (auth, message) = provider.last("/sms");
    assert_eq!(auth, "Bearer sms-secret");
    assert_eq!(message["phone"], phone);
    assert_eq!(message["ttl_seconds"], 300);
    let code = message["code"].as_str().expect("code").to_owned();
    assert!(code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()));
    assert_eq!(
        app.sent_code(&phone).await,
        None,
        "nothing is left in Redis"
    );

    let mut body = json!({"name": "冯二", "id_number": id, "phone": phone, "home_region": "440106",
        "phone_code": code, "real_name_ticket": "face-match-failed"});
    let refused = problem(
        app.post_json("/v1/persons", &body).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(refused["field"], "real_name_ticket");
    let (auth, asked) = provider.last("/real-name");
    assert_eq!(auth, "Bearer rn-secret");
    assert_eq!(
        asked,
        json!({"name": "冯二", "id_number": id, "ticket": "face-match-failed"})
    );
    body["real_name_ticket"] = json!("face-match-ok");
    assert_eq!(
        app.post_json("/v1/persons", &body).await.status(),
        StatusCode::CREATED
    );

    // A provider that fails is a 503 to retry, never a 500 and never a code reported sent.
    provider.down.store(true, Ordering::SeqCst);
    let (_, other_phone) = unique_person();
    let sent = app
        .post_json(
            "/v1/auth/otp",
            &json!({"phone": other_phone, "purpose": "register"}),
        )
        .await;
    assert!(sent.headers().contains_key("retry-after"));
    problem(sent, StatusCode::SERVICE_UNAVAILABLE).await;
    let (again, _) = unique_person();
    body["id_number"] = json!(again);
    problem(
        app.post_json("/v1/persons", &body).await,
        StatusCode::SERVICE_UNAVAILABLE,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_code_request_never_waits_for_the_sms_provider() {
    let (address, provider) = start_provider().await;
    let app = spawn_app_with(|b| {
        b.set_override("identity.sms.kind", "http")
            .and_then(|b| b.set_override("identity.sms.url", format!("{address}/sms")))
            .and_then(|b| b.set_override("identity.sms.timeout_ms", 600_000))
            .and_then(|b| b.set_override("identity.real_name.kind", "dev"))
            .expect("overrides")
    })
    .await;
    let (id, phone) = unique_person();
    let sent = app
        .post_json(
            "/v1/auth/otp",
            &json!({"phone": phone, "purpose": "register"}),
        )
        .await;
    assert_eq!(sent.status(), StatusCode::ACCEPTED);
    let code = provider.last("/sms").1["code"]
        .as_str()
        .expect("code")
        .to_owned();
    let body = json!({"name": "陈三", "id_number": id, "phone": phone, "home_region": "440106",
        "phone_code": code, "real_name_ticket": identity::dev_real_name_ticket(&id)});
    assert_eq!(
        app.post_json("/v1/persons", &body).await.status(),
        StatusCode::CREATED
    );

    // The provider now holds every message until released. A registered phone's sign-in request is answered anyway:
    // had the answer waited for the provider (whose timeout here is ten minutes), its time would tell that the
    // phone is registered.
    provider.hold.store(true, Ordering::SeqCst);
    let answered = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        app.post_json("/v1/auth/otp", &json!({"phone": phone})),
    )
    .await
    .expect("answered while the provider still holds the message");
    assert_eq!(answered.status(), StatusCode::ACCEPTED);
    provider.release.notify_one();
    let sent = eventually(WAIT, "the sign-in code reached the provider", || {
        let provider = &provider;
        async move {
            let seen = provider.seen.lock().expect("lock");
            (seen.iter().filter(|(path, _, _)| path == "/sms").count() == 2).then_some(())
        }
    });
    sent.await;
}
