//! The token's contract: every claim round-trips, every way a code can be wrong has its own error, decoding never
//! panics, rotation keeps issued codes valid until they expire, codes fit a version-10 QR code at level M, and two
//! codes of one person have nothing in common that identifies them.

use coset::iana;
use coset::{CborSerializable, CoseSign1Builder, HeaderBuilder, TaggedCborSerializable};
use hc_domain::Colour;
use hc_token::{
    CodeClaims, DecodeError, Flags, PREFIX, Pseudonyms, SigningKey, TrustStore, Validation, decode,
    encode, inspect,
};
use proptest::prelude::*;

const NOW: i64 = 1_700_000_000;

fn key(issuer: &str, kid: &str, seed: u8) -> SigningKey {
    SigningKey::from_seed(issuer, kid, &[seed; 32]).expect("key")
}

fn claims() -> CodeClaims {
    CodeClaims {
        issuer: "440100".into(),
        issued_at: NOW,
        expires_at: NOW + 300,
        subject: vec![7; hc_token::PSEUDONYM_LEN],
        colour: Colour::Yellow,
        status_version: 42,
        negative_test_at: Some(NOW - 36 * 3600),
        status_at: None,
        flags: Flags::default(),
    }
}

fn trust(keys: &[&SigningKey]) -> TrustStore {
    TrustStore::new(keys.iter().map(|k| k.verifying_key()))
}

fn base45_of(bytes: &[u8]) -> String {
    format!("{PREFIX}{}", base45::encode(bytes))
}

#[test]
fn every_claim_round_trips() {
    let k = key("440100", "gz-1", 1);
    let store = trust(&[&k]);
    let full = CodeClaims {
        colour: Colour::Orange,
        status_version: u64::MAX,
        negative_test_at: Some(NOW - 3600),
        status_at: Some(NOW - 600),
        flags: Flags(Flags::STALE | Flags::INTERNATIONAL | 1 << 40),
        ..claims()
    };
    let minimal = CodeClaims {
        colour: Colour::Green,
        status_version: 0,
        negative_test_at: None,
        ..claims()
    };
    for c in [
        full,
        minimal,
        CodeClaims {
            colour: Colour::Red,
            ..claims()
        },
    ] {
        let code = encode(&c, &k).expect("encode");
        assert!(code.starts_with(PREFIX));
        assert_eq!(
            decode(&code, &store, Validation::at(NOW + 1)).expect("decode"),
            c
        );
        assert_eq!(inspect(&code).expect("inspect"), ("gz-1".to_owned(), c));
    }
    let stale = Flags(Flags::STALE);
    assert!(stale.stale() && !stale.international());
}

#[test]
fn each_way_of_being_wrong_has_its_own_error() {
    let k = key("440100", "gz-1", 1);
    let store = trust(&[&k]);
    let code = encode(&claims(), &k).expect("encode");
    let at = Validation::at(NOW + 1);
    let err = |code: &str| decode(code, &store, at).expect_err("refused");

    assert_eq!(
        err(&code.replacen("HCQ1:", "HC1:", 1)),
        DecodeError::BadPrefix
    );
    assert_eq!(err("HCQ1:!!!"), DecodeError::BadBase45);
    assert!(matches!(
        err(&base45_of(b"not cbor at all")),
        DecodeError::BadCbor(_)
    ));
    // Untagged COSE_Sign1 is refused too: the tag says what the bytes are.
    let bytes = base45::decode(&code[PREFIX.len()..]).expect("base45");
    let untagged = coset::CoseSign1::from_tagged_slice(&bytes)
        .expect("cose")
        .to_vec()
        .expect("untagged");
    assert!(matches!(
        err(&base45_of(&untagged)),
        DecodeError::BadCbor(_)
    ));

    let es256 = CoseSign1Builder::new()
        .protected(
            HeaderBuilder::new()
                .algorithm(iana::Algorithm::ES256)
                .key_id(b"gz-1".to_vec())
                .build(),
        )
        .payload(vec![0xa0])
        .signature(vec![0; 64])
        .build()
        .to_tagged_vec()
        .expect("cose");
    assert!(matches!(
        err(&base45_of(&es256)),
        DecodeError::WrongAlgorithm(_)
    ));

    let stranger = key("440100", "gz-9", 9);
    assert_eq!(
        err(&encode(&claims(), &stranger).expect("encode")),
        DecodeError::UnknownKeyId("gz-9".into())
    );
    // Same key id, another key: a forgery.
    let forger = key("440100", "gz-1", 2);
    assert_eq!(
        err(&encode(&claims(), &forger).expect("encode")),
        DecodeError::BadSignature
    );
    // An altered claim: the colour byte changed after signing.
    let mut cose = coset::CoseSign1::from_tagged_slice(&bytes).expect("cose");
    let mut altered = claims();
    altered.colour = Colour::Green;
    cose.payload = Some(encode_payload(&altered));
    assert_eq!(
        err(&base45_of(&cose.to_tagged_vec().expect("cose"))),
        DecodeError::BadSignature
    );

    let xian = CodeClaims {
        issuer: "610100".into(),
        ..claims()
    };
    assert!(matches!(
        err(&encode(&xian, &k).expect("encode")),
        DecodeError::IssuerMismatch { .. }
    ));
    let no_claims = CoseSign1Builder::new()
        .protected(
            HeaderBuilder::new()
                .algorithm(iana::Algorithm::EdDSA)
                .key_id(b"gz-1".to_vec())
                .build(),
        )
        .payload(vec![0xa0])
        .create_signature(&[], |data| sign_with_seed(1, data))
        .build()
        .to_tagged_vec()
        .expect("cose");
    assert!(matches!(
        err(&base45_of(&no_claims)),
        DecodeError::BadClaims(_)
    ));

    assert_eq!(
        decode(&code, &store, Validation::at(NOW + 300)).expect_err("expired"),
        DecodeError::Expired(NOW + 300)
    );
    assert_eq!(
        decode(&code, &store, Validation::at(NOW - 10)).expect_err("early"),
        DecodeError::NotYetValid(NOW)
    );
    let skewed = Validation {
        now: NOW - 10,
        leeway: 30,
    };
    assert!(
        decode(&code, &store, skewed).is_ok(),
        "within the leeway a clock difference is tolerated"
    );
}

fn encode_payload(c: &CodeClaims) -> Vec<u8> {
    // The payload of a genuine code with these claims, taken from a code signed by any key.
    let code = encode(c, &key(&c.issuer, "tmp", 3)).expect("encode");
    let bytes = base45::decode(&code[PREFIX.len()..]).expect("base45");
    coset::CoseSign1::from_tagged_slice(&bytes)
        .expect("cose")
        .payload
        .expect("payload")
}

fn sign_with_seed(seed: u8, data: &[u8]) -> Vec<u8> {
    let pair =
        aws_lc_rs::signature::Ed25519KeyPair::from_seed_unchecked(&[seed; 32]).expect("pair");
    pair.sign(data).as_ref().to_vec()
}

#[test]
fn a_code_signed_with_a_rotated_out_key_verifies_until_it_expires() {
    let old = key("440100", "gz-1", 1);
    let new = key("440100", "gz-2", 2);
    let retired_at = NOW + 100;
    let mut retired = old.verifying_key();
    retired.signs_until = Some(retired_at);
    let store = TrustStore::new([retired, new.verifying_key()]);
    let before = encode(
        &CodeClaims {
            issued_at: NOW + 90,
            expires_at: NOW + 390,
            ..claims()
        },
        &old,
    )
    .expect("encode");
    assert!(
        decode(&before, &store, Validation::at(NOW + 200)).is_ok(),
        "after the rotation, before expiry"
    );
    assert_eq!(
        decode(&before, &store, Validation::at(NOW + 390)).expect_err("expired"),
        DecodeError::Expired(NOW + 390)
    );
    let after = encode(
        &CodeClaims {
            issued_at: NOW + 101,
            expires_at: NOW + 401,
            ..claims()
        },
        &old,
    )
    .expect("encode");
    assert_eq!(
        decode(&after, &store, Validation::at(NOW + 200)).expect_err("retired"),
        DecodeError::KeyNotValid("gz-1".into())
    );
    let fresh = encode(
        &CodeClaims {
            issued_at: NOW + 101,
            expires_at: NOW + 401,
            ..claims()
        },
        &new,
    )
    .expect("encode");
    assert!(decode(&fresh, &store, Validation::at(NOW + 200)).is_ok());
}

#[test]
fn the_largest_code_fits_a_version_10_qr_code_at_level_m() {
    let k = key("440100", "sixteen-chars-id", 1);
    // Every field at its largest within the spec's bounds: times before 2106 (32 bits), a status version below
    // 2^32, every flag of the first byte, the longest key id.
    let largest = CodeClaims {
        issued_at: u32::MAX as i64 - 600,
        expires_at: u32::MAX as i64,
        status_version: u32::MAX as u64,
        negative_test_at: Some(u32::MAX as i64),
        status_at: Some(u32::MAX as i64),
        flags: Flags(0xff),
        colour: Colour::Orange,
        ..claims()
    };
    let code = encode(&largest, &k).expect("encode");
    let qr = qrcode::QrCode::with_error_correction_level(code.as_bytes(), qrcode::EcLevel::M)
        .expect("fits a QR code");
    let qrcode::Version::Normal(v) = qr.version() else {
        panic!("a micro QR code")
    };
    assert!(v <= 10, "version {v} for {} characters", code.len());
    // The alphanumeric mode, which base45 is made for.
    assert!(
        code.bytes()
            .all(|b| b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:".contains(&b))
    );
}

#[test]
fn pseudonyms_differ_every_time_and_open_only_with_the_platforms_keys() {
    let person = uuid::Uuid::from_u128(0x1234_5678_9abc_def0_1234_5678_9abc_def0);
    let ours = Pseudonyms::new(1, [(1u8, &[1u8; 32][..])]).expect("keys");
    let (a, b) = (ours.seal(person), ours.seal(person));
    assert_ne!(a, b, "a fresh nonce every time");
    assert_eq!(a.len(), hc_token::PSEUDONYM_LEN);
    assert_eq!(ours.open(&a), Some(person));
    assert_eq!(ours.open(&b), Some(person));
    let theirs = Pseudonyms::new(1, [(1u8, &[2u8; 32][..])]).expect("keys");
    assert_eq!(theirs.open(&a), None);
    let mut altered = a.clone();
    altered[20] ^= 1;
    assert_eq!(ours.open(&altered), None);
    assert_eq!(ours.open(&a[..10]), None);
    // Rotation: the new key seals, the old one still opens what it sealed.
    let rotated = Pseudonyms::new(2, [(1u8, &[1u8; 32][..]), (2u8, &[3u8; 32][..])]).expect("keys");
    assert_eq!(rotated.open(&a), Some(person));
    assert_eq!(rotated.seal(person)[0], 2);
}

#[test]
fn two_codes_of_one_person_on_different_days_share_nothing_that_identifies_them() {
    let person = uuid::Uuid::from_u128(0x0fed_cba9_8765_4321_0fed_cba9_8765_4321);
    let pseudonyms = Pseudonyms::new(1, [(1u8, &[1u8; 32][..])]).expect("keys");
    let k = key("440100", "gz-1", 1);
    let day = 86_400;
    let code_on = |at: i64| {
        let c = CodeClaims {
            issued_at: at,
            expires_at: at + 300,
            subject: pseudonyms.seal(person),
            ..claims()
        };
        let code = encode(&c, &k).expect("encode");
        (
            inspect(&code).expect("inspect").1,
            base45::decode(&code[PREFIX.len()..]).expect("bytes"),
        )
    };
    let (monday, monday_bytes) = code_on(NOW);
    let (tuesday, tuesday_bytes) = code_on(NOW + day);
    assert_ne!(monday.subject, tuesday.subject);
    // Only the key number byte is shared; random nonces may still agree on a byte or two by chance (1 in 256
    // for one byte, which failed a CI run when this asked for exactly one), never on four (1 in 2^32).
    assert_eq!(monday.subject[0], tuesday.subject[0], "the key number");
    assert!(
        common_run(&monday.subject, &tuesday.subject) < 1 + 4,
        "nothing beyond the key number byte is shared (random nonces and ciphertexts)"
    );
    assert_ne!(monday.issued_at, tuesday.issued_at);
    assert_eq!(
        monday.status_at, None,
        "fresh codes carry no status timestamp"
    );
    for bytes in [&monday_bytes, &tuesday_bytes] {
        assert!(
            !contains(bytes, person.as_bytes()),
            "the person id never appears"
        );
        assert!(!contains(bytes, person.to_string().as_bytes()));
    }
    // What they still share is coarse and shared by many people: issuer, colour, status version, and the hour of
    // the latest negative test (the issuer rounds it down to the hour).
}

fn common_run(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn decoding_any_string_never_panics(s in ".{0,400}") {
        let store = trust(&[&key("440100", "gz-1", 1)]);
        let _ = decode(&s, &store, Validation::at(NOW));
        let _ = decode(&format!("{PREFIX}{s}"), &store, Validation::at(NOW));
        let _ = inspect(&s);
    }

    #[test]
    fn decoding_any_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let store = trust(&[&key("440100", "gz-1", 1)]);
        let _ = decode(&base45_of(&bytes), &store, Validation::at(NOW));
    }

    /// Any change to one byte of a genuine code is refused, or (a change CBOR ignores) leaves the claims unchanged.
    #[test]
    fn no_altered_code_passes_with_other_claims(at in 0usize..400, xor in 1u8..=255) {
        let k = key("440100", "gz-1", 1);
        let store = trust(&[&k]);
        let code = encode(&claims(), &k).expect("encode");
        let mut bytes = base45::decode(&code[PREFIX.len()..]).expect("bytes");
        let i = at % bytes.len();
        bytes[i] ^= xor;
        if let Ok(c) = decode(&base45_of(&bytes), &store, Validation::at(NOW + 1)) {
            prop_assert_eq!(c, claims());
        }
    }
}

/// Key ids are unique per issuer only: two regions may both use `k-1`. Each region's code verifies as its own (the
/// key whose signature verifies is the one meant), and a third key under the id cannot sign for either.
#[test]
fn two_issuers_may_share_a_key_id() {
    let gz = key("440100", "k-1", 1);
    let xa = key("610100", "k-1", 2);
    let store = trust(&[&gz, &xa]);
    let at = Validation::at(NOW + 10);
    for (k, issuer) in [(&gz, "440100"), (&xa, "610100")] {
        let code = encode(
            &CodeClaims {
                issuer: issuer.into(),
                ..claims()
            },
            k,
        )
        .expect("encode");
        assert_eq!(decode(&code, &store, at).expect("valid").issuer, issuer);
    }
    // Xi'an's key claiming Guangzhou's issuer, and an unknown key under the id.
    let claims_gz = CodeClaims {
        issuer: "440100".into(),
        ..claims()
    };
    assert!(matches!(
        decode(&encode(&claims_gz, &xa).expect("encode"), &store, at),
        Err(DecodeError::IssuerMismatch { .. })
    ));
    let stranger = key("440100", "k-1", 3);
    assert_eq!(
        decode(&encode(&claims_gz, &stranger).expect("encode"), &store, at).expect_err("forged"),
        DecodeError::BadSignature
    );
}
