//! What each fuzz target does with one input. The fuzz binaries (`libs/fuzz/fuzz_targets`) and the replay test
//! (`services/verification/tests/fuzz_corpus.rs`, in `make test`) include this one file, so the kept corpus and
//! every crash kept under `libs/fuzz/regressions` run through exactly what was fuzzed. Every input must end in a
//! value or a typed error: never a panic, an abort or a hang.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, NaiveDate, Utc};
use hc_platform::privacy::BlindIndex;
use hc_token::{SignedTrustList, SigningKey, TRUST_LIST_FORMAT, TrustList, TrustStore, Validation};

/// One fuzz target: what it does with an input.
pub type Target = fn(&[u8]);

/// The targets by name, as `make fuzz` and the replay test know them.
pub const TARGETS: [(&str, Target); 7] = [
    ("token_decode", token_decode),
    ("trust_list", trust_list),
    ("id_number", id_number),
    ("import_rows", import_rows),
    ("events", events),
    ("venue_code", venue_code),
    ("dcc_decode", dcc_decode),
];

/// A fixed moment, so that a kept input does the same thing on every run.
fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_767_225_660, 0).unwrap_or_default()
}

fn index() -> BlindIndex {
    let key =
        secrecy::SecretString::from("Zm9yIHRoZSBmdXp6IHRhcmdldHMgb25seSwgbm90IGEgc2VjcmV0IQ==");
    BlindIndex::from_secret(&key).expect("a 40-byte key")
}

/// The code token: the input as text after the prefix, and as raw bytes behind base45.
pub fn token_decode(data: &[u8]) {
    let key = SigningKey::from_seed("440100", "fuzz-1", &[7; 32]).expect("key");
    let trust = TrustStore::new([key.verifying_key()]);
    let at = Validation::at(now().timestamp());
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = hc_token::decode(text, &trust, at);
        let _ = hc_token::inspect(text);
    }
    let code = format!("{}{}", hc_token::PREFIX, base45::encode(data));
    let _ = hc_token::decode(&code, &trust, at);
}

/// A peer's trust list: the input as the wire JSON, as the COSE_Sign1 inside it, and as the list's own JSON (whose
/// keys are parsed into a trust store).
pub fn trust_list(data: &[u8]) {
    let root = SigningKey::from_seed("000000", "root-1", &[9; 32])
        .expect("key")
        .verifying_key();
    let at = now().timestamp();
    if let Ok(signed) = serde_json::from_slice::<SignedTrustList>(data) {
        let _ = signed.verify(&root, at);
    }
    let wrapped = SignedTrustList {
        format: TRUST_LIST_FORMAT.into(),
        signed: URL_SAFE_NO_PAD.encode(data),
    };
    let _ = wrapped.verify(&root, at);
    if let Ok(list) = serde_json::from_slice::<TrustList>(data) {
        let _ = list.trust_store();
    }
}

/// A resident ID number, as registration, imports and staff lists parse it.
pub fn id_number(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let today = NaiveDate::from_ymd_opt(2022, 1, 4).expect("day");
        let _ = hc_domain::IdNumber::parse(text, today);
    }
}

/// An official import's body, framed and checked row by row as `POST /v1/imports` does, storing nothing. The first
/// byte picks the kind, the format (NDJSON or CSV) and whether the client is regional.
pub fn import_rows(data: &[u8]) {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let kind = match pick % 3 {
        0 => declaration::Kind::NatResults,
        1 => declaration::Kind::Cases,
        _ => declaration::Kind::Visits,
    };
    let format = if pick & 4 == 0 {
        declaration::Format::Ndjson
    } else {
        declaration::Format::Csv
    };
    let region = (pick & 8 != 0).then(|| hc_domain::RegionCode::parse("440100").expect("region"));
    let _ = declaration::check_upload(kind, format, body, region, &index(), now());
}

/// Every event decoder, on the input as a JSON payload.
pub fn events(data: &[u8]) {
    use hc_platform::events::*;
    let Ok(payload) = serde_json::from_slice(data) else {
        return;
    };
    let event = hc_platform::streams::Delivered {
        event_id: "fuzz:1".into(),
        payload,
        traceparent: None,
    };
    let _ = PersonRegistered::decode(&event);
    let _ = DeclarationSubmitted::decode(&event);
    let _ = FactsImported::decode(&event);
    let _ = StatusChanged::decode(&event);
    let _ = AuthRevoked::decode(&event);
    let _ = RegionRiskChanged::decode(&event);
}

/// A venue's check-in code, as a citizen's phone reads it from the poster.
pub fn venue_code(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = verification::venue_of_code(&index(), text);
    }
}

/// An EU DCC: the input as a code, as the bytes behind `HC1:` (base45 of zlib), as the COSE inside, as a document
/// signer certificate (DER) and as a DCC's JSON, each through every step that reads it, including the verification
/// of the whole chain against a signer made from the input.
pub fn dcc_decode(data: &[u8]) {
    use hc_token::dcc;
    let clock = now().timestamp_micros();
    let signer = dcc::Signer::from_der(data).ok();
    let signers = dcc::Signers::new(signer.clone());
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = dcc::verify(text, &signers, clock, 0);
    }
    let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    if std::io::Write::write_all(&mut zlib, data).is_ok()
        && let Ok(compressed) = zlib.finish()
    {
        let code = format!("{}{}", dcc::PREFIX, base45::encode(&compressed));
        let _ = dcc::verify(&code, &signers, clock, 30_000_000);
    }
    let _ = dcc::inflate(data);
    if let Ok(sign1) = dcc::cose(data)
        && let Ok(claims) = dcc::claims(&sign1)
    {
        if let Some(signer) = &signer {
            let _ = dcc::verify_signature(&sign1, signer);
            let _ = dcc::check_expiry(&claims, signer, clock);
        }
        if let Ok(json) = dcc::to_json(&claims.dgc) {
            let _ = dcc::Certificate::from_json(json);
        }
    }
    if let Ok(json) = serde_json::from_slice(data) {
        let _ = dcc::Certificate::from_json(json);
    }
}
