//! The checkpoint's cost of one code's signature, side by side in one run: aws-lc-rs (what `hc_token::decode` uses),
//! ed25519-dalek one at a time with the key's point decompressed once, ed25519-dalek's batch verification (per
//! signature, for batches of 16 and 64: what batching across requests could save), and the whole decode of a code.
//! Run: `cargo bench -p hc-token --bench signature`.

use aws_lc_rs::signature::{ED25519, UnparsedPublicKey};
use criterion::{Criterion, criterion_group, criterion_main};
use ed25519_dalek::Signer;
use hc_domain::Colour;
use hc_token::{CodeClaims, Flags, SigningKey, TrustStore, Validation};

fn signature(c: &mut Criterion) {
    let seed = [7u8; 32];
    let message = [42u8; 180]; // about the size of a code's COSE Sig_structure
    let dalek = ed25519_dalek::SigningKey::from_bytes(&seed);
    let signature = dalek.sign(&message).to_bytes();
    let public = dalek.verifying_key().to_bytes();
    let parsed = dalek.verifying_key();

    let key = SigningKey::from_seed("440100", "bench-1", &seed).expect("key");
    let trust = TrustStore::new([key.verifying_key()]);
    let now = 1_700_000_000;
    let code = hc_token::encode(
        &CodeClaims {
            issuer: "440100".into(),
            issued_at: now,
            expires_at: now + 300,
            subject: vec![9; 40],
            colour: Colour::Green,
            status_version: 12,
            negative_test_at: Some(now - 30 * 3600),
            status_at: None,
            flags: Flags::default(),
        },
        &key,
    )
    .expect("code");

    let mut group = c.benchmark_group("ed25519 verify");
    group.bench_function("aws-lc-rs, raw public key", |b| {
        b.iter(|| {
            UnparsedPublicKey::new(&ED25519, &public)
                .verify(&message, &signature)
                .expect("valid")
        })
    });
    group.bench_function("ed25519-dalek verify_strict, parsed key", |b| {
        let signature = ed25519_dalek::Signature::from_bytes(&signature);
        b.iter(|| parsed.verify_strict(&message, &signature).expect("valid"))
    });
    for batch in [16usize, 64] {
        let messages: Vec<Vec<u8>> = (0..batch)
            .map(|i| [message.as_slice(), &[i as u8]].concat())
            .collect();
        let signatures: Vec<_> = messages.iter().map(|m| dalek.sign(m)).collect();
        let messages: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
        let keys = vec![parsed; batch];
        group.throughput(criterion::Throughput::Elements(batch as u64));
        group.bench_function(format!("ed25519-dalek verify_batch of {batch}"), |b| {
            b.iter(|| ed25519_dalek::verify_batch(&messages, &signatures, &keys).expect("valid"))
        });
    }
    group.throughput(criterion::Throughput::Elements(1));
    group.bench_function("hc_token::decode (base45, COSE, signature, claims)", |b| {
        b.iter(|| hc_token::decode(&code, &trust, Validation::at(now)).expect("valid"))
    });
    group.finish();
}

criterion_group!(benches, signature);
criterion_main!(benches);
