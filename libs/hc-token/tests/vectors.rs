//! The test vectors of docs/token-vectors.json (the spec's, checked independently by
//! scripts/check_token_vectors.py): our encoder must produce exactly their codes from their keys and claims, and
//! our decoder must accept the valid ones and refuse the others with the error they name. Regenerate after a
//! deliberate format change with `HC_WRITE_VECTORS=1 cargo test -p hc-token --test vectors`.

use hc_domain::Colour;
use hc_token::{CodeClaims, Flags, SigningKey, TrustStore, Validation, decode, encode};
use serde_json::{Value, json};

const FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/token-vectors.json");

struct Case {
    name: &'static str,
    seed: u8,
    issuer: &'static str,
    kid: &'static str,
    claims: CodeClaims,
    /// (when it is judged, the error expected then or None for valid)
    judged: i64,
    expect: Option<&'static str>,
    /// Flip this byte of the CBOR after signing.
    tamper: Option<usize>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn cases() -> Vec<Case> {
    let t = 1_767_225_600; // 2026-01-01T00:00:00Z
    let subject = |n: u8| {
        (0..hc_token::PSEUDONYM_LEN as u8)
            .map(|i| i.wrapping_mul(37).wrapping_add(n))
            .collect::<Vec<_>>()
    };
    let base = |issuer: &str, n: u8| CodeClaims {
        issuer: issuer.into(),
        issued_at: t,
        expires_at: t + 300,
        subject: subject(n),
        colour: Colour::Green,
        status_version: 1,
        negative_test_at: None,
        status_at: None,
        flags: Flags::default(),
    };
    vec![
        Case {
            name: "green, nothing else",
            seed: 1,
            issuer: "440100",
            kid: "gz-2026-01",
            claims: base("440100", 1),
            judged: t + 60,
            expect: None,
            tamper: None,
        },
        Case {
            name: "yellow with a negative test",
            seed: 1,
            issuer: "440100",
            kid: "gz-2026-01",
            claims: CodeClaims {
                colour: Colour::Yellow,
                status_version: 7,
                negative_test_at: Some(t - 30 * 3600),
                ..base("440100", 2)
            },
            judged: t + 60,
            expect: None,
            tamper: None,
        },
        Case {
            name: "red, stale, with the time of the status",
            seed: 1,
            issuer: "440100",
            kid: "gz-2026-01",
            claims: CodeClaims {
                colour: Colour::Red,
                status_version: 12,
                status_at: Some(t - 900),
                flags: Flags(Flags::STALE),
                ..base("440100", 3)
            },
            judged: t + 60,
            expect: None,
            tamper: None,
        },
        Case {
            name: "orange, international variant, another issuer",
            seed: 2,
            issuer: "610100",
            kid: "xa-1",
            claims: CodeClaims {
                colour: Colour::Orange,
                status_version: 3,
                flags: Flags(Flags::INTERNATIONAL),
                negative_test_at: Some(t - 3600),
                ..base("610100", 4)
            },
            judged: t + 60,
            expect: None,
            tamper: None,
        },
        Case {
            name: "green, version above 2^16, an unknown flag bit kept",
            seed: 2,
            issuer: "610100",
            kid: "xa-1",
            claims: CodeClaims {
                status_version: 70_000,
                flags: Flags(1 << 7),
                ..base("610100", 5)
            },
            judged: t + 60,
            expect: None,
            tamper: None,
        },
        Case {
            name: "expired when judged",
            seed: 1,
            issuer: "440100",
            kid: "gz-2026-01",
            claims: base("440100", 6),
            judged: t + 300,
            expect: Some("expired"),
            tamper: None,
        },
        Case {
            name: "last signature byte altered",
            seed: 1,
            issuer: "440100",
            kid: "gz-2026-01",
            claims: base("440100", 7),
            judged: t + 60,
            expect: Some("bad_signature"),
            tamper: Some(usize::MAX),
        },
    ]
}

fn claims_json(c: &CodeClaims) -> Value {
    json!({
        "iss": c.issuer, "iat": c.issued_at, "exp": c.expires_at, "subject": hex(&c.subject),
        "colour": c.colour.as_str(), "status_version": c.status_version,
        "negative_test_at": c.negative_test_at, "status_at": c.status_at, "flags": c.flags.0,
    })
}

fn build() -> Value {
    let mut out = Vec::new();
    for case in cases() {
        let seed = [case.seed; 32];
        let key = SigningKey::from_seed(case.issuer, case.kid, &seed).expect("key");
        let mut code = encode(&case.claims, &key).expect("encode");
        if let Some(at) = case.tamper {
            let mut bytes = base45::decode(&code[hc_token::PREFIX.len()..]).expect("bytes");
            let i = at.min(bytes.len() - 1);
            bytes[i] ^= 0x01;
            code = format!("{}{}", hc_token::PREFIX, base45::encode(&bytes));
        }
        let cbor = base45::decode(&code[hc_token::PREFIX.len()..]).expect("bytes");
        out.push(json!({
            "name": case.name,
            "key": {"issuer": case.issuer, "kid": case.kid, "seed": hex(&seed), "public": hex(&key.verifying_key().public)},
            "claims": claims_json(&case.claims),
            "judged_at": case.judged,
            "expect": case.expect.unwrap_or("valid"),
            "cbor": hex(&cbor),
            "code": code,
        }));
    }
    json!({ "format": "HCQ1", "spec": "docs/token-format.md", "vectors": out })
}

#[test]
fn the_published_vectors_are_what_this_code_produces_and_accepts() {
    let built = build();
    if std::env::var("HC_WRITE_VECTORS").is_ok() {
        std::fs::write(
            FILE,
            serde_json::to_string_pretty(&built).expect("json") + "\n",
        )
        .expect("write");
    }
    let published: Value =
        serde_json::from_str(&std::fs::read_to_string(FILE).expect("docs/token-vectors.json"))
            .expect("json");
    assert_eq!(
        published, built,
        "docs/token-vectors.json is out of date (see this file's header)"
    );
    assert!(published["vectors"].as_array().expect("vectors").len() >= 5);

    let keys: Vec<_> = cases()
        .iter()
        .map(|c| {
            SigningKey::from_seed(c.issuer, c.kid, &[c.seed; 32])
                .expect("key")
                .verifying_key()
        })
        .collect();
    let store = TrustStore::new(keys);
    for (case, v) in cases()
        .iter()
        .zip(published["vectors"].as_array().expect("vectors"))
    {
        let result = decode(
            v["code"].as_str().expect("code"),
            &store,
            Validation::at(case.judged),
        );
        match case.expect {
            None => assert_eq!(result.expect(case.name), case.claims),
            Some(code) => assert_eq!(result.expect_err(case.name).code(), code, "{}", case.name),
        }
    }
}
