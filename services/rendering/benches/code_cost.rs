//! What one code costs when nothing is cached: signing it (claims, COSE_Sign1, Ed25519, base45), rendering it as
//! SVG and as PNG, and, for the checkpoint's side, verifying it.
//! Run: `cargo bench -p rendering --bench code_cost`.

use criterion::{Criterion, criterion_group, criterion_main};
use hc_domain::Colour;
use hc_token::{CodeClaims, Flags, Pseudonyms, SigningKey, TrustStore, Validation};

fn costs(c: &mut Criterion) {
    let key = SigningKey::from_seed("440100", "bench-1", &[7; 32]).expect("key");
    let pseudonyms = Pseudonyms::new(1, [(1u8, &[9u8; 32][..])]).expect("keys");
    let trust = TrustStore::new([key.verifying_key()]);
    let now = chrono::Utc::now().timestamp();
    let person = uuid::Uuid::new_v4();
    let claims = |subject| CodeClaims {
        issuer: "440100".into(),
        issued_at: now,
        expires_at: now + 300,
        subject,
        colour: Colour::Yellow,
        status_version: 12,
        negative_test_at: Some(now - 30 * 3600),
        status_at: None,
        flags: Flags::default(),
    };
    let code = hc_token::encode(&claims(pseudonyms.seal(person)), &key).expect("code");
    let mut group = c.benchmark_group("code");
    group.bench_function("sign (pseudonym, claims, COSE, Ed25519, base45)", |b| {
        b.iter(|| hc_token::encode(&claims(pseudonyms.seal(person)), &key).expect("code"))
    });
    group.bench_function("render svg", |b| {
        b.iter(|| rendering::render::svg(&code, Colour::Yellow).expect("svg"))
    });
    group.bench_function("render png (6 px per module)", |b| {
        b.iter(|| rendering::render::png(&code, Colour::Yellow, 6).expect("png"))
    });
    group.bench_function("verify (checkpoint)", |b| {
        b.iter(|| hc_token::decode(&code, &trust, Validation::at(now)).expect("valid"))
    });
    group.finish();
}

criterion_group!(benches, costs);
criterion_main!(benches);
