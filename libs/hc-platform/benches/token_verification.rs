//! Access-token verification throughput: what every authenticated request pays on every service.
//! Run: `cargo bench --workspace --bench token_verification`. `ed25519_verify_only` is the floor measured in
//! the same run: the bare signature check on the same bytes, without JWT parsing and claim validation.

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
        verified_cache_capacity: 0,
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
        scope: hc_domain::Scope::Citizen.into(),
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
    // The floor: one bare Ed25519 verification of the same signing input, with the same library.
    let der =
        aws_lc_rs::signature::Ed25519KeyPair::generate_pkcs8(&aws_lc_rs::rand::SystemRandom::new())
            .expect("keygen");
    let pair = aws_lc_rs::signature::Ed25519KeyPair::from_pkcs8(der.as_ref()).expect("pair");
    let (message, _) = token.rsplit_once('.').expect("three parts");
    let signature = pair.sign(message.as_bytes());
    let public = aws_lc_rs::signature::UnparsedPublicKey::new(
        &aws_lc_rs::signature::ED25519,
        aws_lc_rs::signature::KeyPair::public_key(&pair)
            .as_ref()
            .to_vec(),
    );
    group.bench_function("ed25519_verify_only", |b| {
        b.iter(|| {
            public
                .verify(std::hint::black_box(message.as_bytes()), signature.as_ref())
                .expect("valid")
        })
    });
    group.finish();
}

criterion_group!(benches, verification);
criterion_main!(benches);
