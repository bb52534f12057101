//! TLS on every connection, against a real PostgreSQL and a real Redis with TLS on and an HTTPS server of ours, all
//! with certificates of a CA this test generates; a second CA, which signed nothing here, stands for an attacker on
//! the path presenting its own certificate.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use actix_web::{HttpResponse, web};
use hc_platform::auth::KeyRing;
use hc_platform::defences::Defences;
use hc_platform::health::Dependencies;
use hc_platform::http::{Platform, serve};
use hc_platform::settings::{PlatformSettings, RedisSettings, TlsSettings};
use hc_platform::store::Store;
use hc_platform::testing::{free_port, wait_for_port};
use hc_platform::tls::{Tls, server_config};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use secrecy::SecretString;

/// A CA, a certificate it signed for 127.0.0.1 and localhost, and a second CA that signed nothing.
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("hc-tls-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("pki dir");
        let ca = |name: &str| {
            let key = KeyPair::generate().expect("CA key");
            let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, name);
            let cert = params.self_signed(&key).expect("CA certificate");
            (cert.pem(), Issuer::new(params, key))
        };
        let (ca_pem, issuer) = ca("hc test CA");
        let (rogue_pem, _) = ca("someone else's CA");
        let key = KeyPair::generate().expect("server key");
        let params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .expect("server params");
        let cert = params.signed_by(&key, &issuer).expect("server certificate");
        for (name, pem) in [
            ("ca.pem", ca_pem),
            ("rogue.pem", rogue_pem),
            ("server.pem", cert.pem()),
            ("server.key", key.serialize_pem()),
        ] {
            std::fs::write(dir.join(name), pem).expect("write pem");
        }
        Self { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    fn trusting(&self, ca: &str, required: bool) -> Tls {
        Tls::from_settings(&TlsSettings {
            ca_file: self.path(ca),
            cert_file: String::new(),
            key_file: String::new(),
            required,
        })
        .expect("trust store")
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A redis-server that speaks only TLS, with the test CA's certificate.
struct TlsRedis {
    child: Child,
    port: u16,
}

impl TlsRedis {
    fn start(pki: &Pki) -> Self {
        let port = free_port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                "0",
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(["--tls-port", &port.to_string(), "--tls-auth-clients", "no"])
            .args(["--tls-cert-file", &pki.path("server.pem")])
            .args(["--tls-key-file", &pki.path("server.key")])
            .args(["--tls-ca-cert-file", &pki.path("ca.pem")])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server (Debian's is built with TLS)");
        wait_for_port(port);
        Self { child, port }
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A PostgreSQL cluster of its own with `ssl = on` and the test CA's certificate (run as `postgres` when the test
/// runs as root, since PostgreSQL refuses root).
struct TlsPostgres {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
}

impl TlsPostgres {
    fn start(pki: &Pki) -> Self {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL binaries under /usr/lib/postgresql")
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .find(|b| b.join("initdb").exists())
            .expect("initdb");
        let data = pki.dir.join("pgdata");
        std::fs::create_dir_all(&data).expect("data dir");
        for name in ["server.pem", "server.key"] {
            std::fs::copy(pki.dir.join(name), data.join(name)).expect("copy certificate");
        }
        Self::as_owner(
            Command::new("chmod").args(["0600", &data.join("server.key").display().to_string()]),
        );
        if is_root() {
            Self::as_owner(Command::new("chown").args([
                "-R",
                "postgres",
                &pki.dir.display().to_string(),
            ]));
        }
        // initdb wants an empty directory: the certificates wait beside it until then.
        let cluster = data.join("cluster");
        Self::as_pg(
            &bin,
            "initdb",
            &[
                "-D",
                &cluster.display().to_string(),
                "-A",
                "trust",
                "-U",
                "postgres",
            ],
        );
        let port = free_port();
        let options = format!(
            "-p {port} -k {dir} -c listen_addresses=127.0.0.1 -c ssl=on -c ssl_cert_file={dir}/server.pem -c ssl_key_file={dir}/server.key",
            dir = data.display()
        );
        Self::as_pg(
            &bin,
            "pg_ctl",
            &[
                "-D",
                &cluster.display().to_string(),
                "-o",
                &options,
                "-l",
                &data.join("log").display().to_string(),
                "-w",
                "start",
            ],
        );
        Self {
            bin,
            data: cluster,
            port,
        }
    }

    fn as_owner(command: &mut Command) {
        assert!(command.status().expect("run").success(), "{command:?}");
    }

    fn as_pg(bin: &Path, tool: &str, args: &[&str]) {
        let program = bin.join(tool);
        let mut command = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        command.args(args).stdout(Stdio::null());
        assert!(command.status().expect(tool).success(), "{tool} failed");
    }

    fn url(&self, query: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres{query}",
            self.port
        )
    }
}

impl Drop for TlsPostgres {
    fn drop(&mut self) {
        let data = self.data.display().to_string();
        Self::as_pg(
            &self.bin,
            "pg_ctl",
            &["-D", &data, "-m", "immediate", "-w", "stop"],
        );
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.trim_ascii() == b"0")
        .unwrap_or(false)
}

/// Whether the pool's connection is encrypted, as the server sees it.
async fn encrypted(pool: &deadpool_postgres::Pool) -> bool {
    let sql = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()";
    let client = pool.get().await.expect("a connection");
    client
        .query_one(sql, &[])
        .await
        .expect("pg_stat_ssl")
        .get(0)
}

/// The error of a configuration the production profile must refuse.
fn refusal<T>(outcome: anyhow::Result<T>) -> anyhow::Error {
    match outcome {
        Ok(_) => panic!("accepted"),
        Err(err) => err,
    }
}

fn platform() -> PlatformSettings {
    hc_platform::settings::load_with::<serde_json::Value>("[demo]\nx = 1\n", "demo", None, |b| b)
        .expect("platform defaults")
        .platform
}

#[tokio::test]
async fn postgres_redis_and_https_speak_tls_verified_against_the_configured_ca_only() {
    let pki = Pki::new();
    let (trusted, rogue) = (
        pki.trusting("ca.pem", false),
        pki.trusting("rogue.pem", false),
    );

    // PostgreSQL: sslmode=verify-full connects over TLS, verified; an unknown CA's trust store refuses the server.
    let postgres = TlsPostgres::start(&pki);
    let mut database = platform().database;
    database.url = SecretString::from(postgres.url("?sslmode=verify-full"));
    let pool = hc_platform::db::pool(&database, &trusted, "tls_test").expect("pool");
    assert!(encrypted(&pool).await, "the connection is encrypted");
    let pool = hc_platform::db::pool(&database, &rogue, "tls_test").expect("pool");
    assert!(
        pool.get().await.is_err(),
        "a certificate of an unknown CA is refused"
    );
    // A URL without sslmode connects in plain (never an unverified TLS), and the production profile refuses it.
    database.url = SecretString::from(postgres.url(""));
    let pool = hc_platform::db::pool(&database, &trusted, "tls_test").expect("pool");
    assert!(!encrypted(&pool).await);
    let required = pki.trusting("ca.pem", true);
    let refused = refusal(hc_platform::db::pool(&database, &required, "tls_test"));
    assert!(
        refused.to_string().contains("sslmode=verify-full"),
        "{refused}"
    );

    // Redis: rediss:// verified against the CA; another CA's store cannot connect; redis:// refused when required.
    let redis = TlsRedis::start(&pki);
    let settings = |url: String| RedisSettings {
        url: SecretString::from(url),
        cluster_urls: String::new(),
        key_prefix: "tls-test:".into(),
        response_timeout_ms: 2_000,
    };
    let rediss = settings(format!("rediss://127.0.0.1:{}", redis.port));
    let store = Store::connect(&rediss, &trusted)
        .await
        .expect("a verified TLS connection");
    store.ping().await.expect("PING over TLS");
    assert!(
        Store::connect(&rediss, &rogue).await.is_err(),
        "a certificate of an unknown CA is refused"
    );
    let insecure = settings(format!("rediss://127.0.0.1:{}/#insecure", redis.port));
    assert!(
        Store::connect(&insecure, &trusted).await.is_err(),
        "#insecure is refused"
    );
    let plain = settings("redis://127.0.0.1:6379".into());
    let refused = refusal(Store::connect(&plain, &required).await);
    assert!(refused.to_string().contains("rediss://"), "{refused}");

    // HTTPS: a service with tls.cert_file serves HTTPS; our clients verify it, and the key fetch refuses http://.
    let tls_settings = TlsSettings {
        ca_file: pki.path("ca.pem"),
        cert_file: pki.path("server.pem"),
        key_file: pki.path("server.key"),
        required: true,
    };
    let settings = platform();
    let ring = KeyRing::from_spec(&SecretString::from(
        KeyRing::generate_spec("k").expect("keygen"),
    ))
    .expect("ring");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = serve(
        listener,
        Platform {
            defences: web::Data::new(Defences::from_settings(&settings).expect("defences")),
            verifier: web::Data::new(ring.verifier(&settings.auth).expect("verifier")),
            dependencies: web::Data::new(Dependencies {
                db: None,
                redis: None,
            }),
            json_body_bytes: 1024,
            workers: 1,
            cors_origins: Vec::new(),
            tls: server_config(&tls_settings).expect("server certificate"),
            routes: Default::default(),
        },
        |cfg| {
            cfg.route(
                "/hello",
                web::get().to(|| async { HttpResponse::Ok().body("over TLS") }),
            );
        },
    )
    .expect("serve");
    let handle = server.handle();
    tokio::spawn(server);
    let https = format!("https://127.0.0.1:{port}/hello");
    let body = trusted
        .http_client()
        .build()
        .expect("client")
        .get(&https)
        .send()
        .await
        .expect("a verified HTTPS call")
        .text()
        .await
        .expect("body");
    assert_eq!(body, "over TLS");
    let client = rogue.http_client().build().expect("client");
    assert!(
        client.get(&https).send().await.is_err(),
        "a certificate of an unknown CA is refused"
    );
    let plain = reqwest::get(format!("http://127.0.0.1:{port}/hello")).await;
    assert!(
        plain.is_err() || !plain.expect("answer").status().is_success(),
        "no plain HTTP"
    );
    let mut auth = settings.auth.clone();
    auth.jwks_url = format!("http://127.0.0.1:{port}/v1/auth/keys");
    let refused = refusal(hc_platform::auth::TokenVerifier::from_jwks_url(
        &auth, &required,
    ));
    assert!(refused.to_string().contains("https://"), "{refused}");
    handle.stop(false).await;
}
