//! Access-token verification throughput: what every authenticated request pays on every service.
//! Run: `cargo bench -p hc-platform --bench token_verification`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hc_platform::auth::{AccessClaims, KeyRing, SubjectKind};
use hc_platform::settings::AuthSettings;
use secrecy::SecretString;

fn verification(c: &mut Criterion) {
    let ring = KeyRing::from_spec(&SecretString::from(
        KeyRing::generate_spec("bench").expect("keygen"),
    ))
    .expect("ring");
    let settings = AuthSettings {
        issuer: "hc-identity".into(),
        audience: "hc-platform".into(),
        jwks_url: String::new(),
        leeway_seconds: 30,
    };
    let verifier = ring.verifier(&settings).expect("verifier");
    let now = chrono::Utc::now().timestamp();
    let claims = AccessClaims {
        iss: settings.issuer.clone(),
        aud: settings.audience.clone(),
        sub: uuid::Uuid::new_v4().to_string(),
        iat: now,
        exp: now + 3600,
        jti: uuid::Uuid::new_v4().to_string(),
        scope: "citizen".into(),
        kind: SubjectKind::Citizen,
        region: None,
    };
    let token = ring.sign(&claims).expect("sign");

    let mut group = c.benchmark_group("access_token");
    group.throughput(Throughput::Elements(1));
    group.bench_function("verify_eddsa", |b| {
        b.iter(|| {
            verifier
                .verify_cached(std::hint::black_box(&token))
                .expect("valid")
        })
    });
    group.bench_function("sign_eddsa", |b| {
        b.iter(|| ring.sign(std::hint::black_box(&claims)).expect("signed"))
    });
    group.finish();
}

criterion_group!(benches, verification);
criterion_main!(benches);
