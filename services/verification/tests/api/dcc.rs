//! EU Digital COVID Certificates at the gate: the document signers an admin uploads, and a venue's `dcc` policy
//! with its CertLogic rules. The certificates are made here, with a signer of the test's own (rcgen).

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use coset::cwt::{ClaimsSetBuilder, Timestamp};
use coset::{CborSerializable, CoseSign1Builder, HeaderBuilder, TaggedCborSerializable, iana};
use serde_json::{Value, json};

use crate::helpers::{now, open_policy, problem, spawn_app};

/// A document signer: its key and its certificate (base64 DER), limited by extended key usage to `usages` (the
/// last arc of `1.3.6.1.4.1.1847.2021.1.x`: 1 test, 2 vaccination, 3 recovery), or not limited.
struct TestSigner {
    key: EcdsaKeyPair,
    certificate: String,
    kid: Vec<u8>,
}

fn signer(usages: &[u64]) -> TestSigner {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("a key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params.extended_key_usages = usages
        .iter()
        .map(|u| rcgen::ExtendedKeyUsagePurpose::Other(vec![1, 3, 6, 1, 4, 1, 1847, 2021, 1, *u]))
        .collect();
    let der = params
        .self_signed(&key)
        .expect("a certificate")
        .der()
        .to_vec();
    TestSigner {
        key: EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &key.serialize_der())
            .expect("pkcs8"),
        certificate: STANDARD.encode(&der),
        kid: hc_token::dcc::kid_of_certificate(&der).to_vec(),
    }
}

impl TestSigner {
    /// `HC1:` of `dgc`, issued a minute ago and valid for `valid_for` seconds.
    fn code(&self, dgc: &Value, valid_for: i64) -> String {
        self.code_issued(dgc, -60, valid_for)
    }

    /// `HC1:` of `dgc`, issued `issued` seconds from now (negative: ago), valid until `valid_for` seconds from now.
    fn code_issued(&self, dgc: &Value, issued: i64, valid_for: i64) -> String {
        let hcert = ciborium::Value::Map(vec![(
            ciborium::Value::Integer(1.into()),
            ciborium::Value::serialized(dgc).expect("CBOR"),
        )]);
        let claims = ClaimsSetBuilder::new()
            .issuer("AT".into())
            .issued_at(Timestamp::WholeSeconds(now() + issued))
            .expiration_time(Timestamp::WholeSeconds(now() + valid_for))
            .claim(iana::CwtClaimName::Hcert, hcert)
            .build();
        let rng = SystemRandom::new();
        let sign1 = CoseSign1Builder::new()
            .protected(
                HeaderBuilder::new()
                    .algorithm(iana::Algorithm::ES256)
                    .key_id(self.kid.clone())
                    .build(),
            )
            .payload(claims.to_vec().expect("claims"))
            .create_signature(b"", |data| {
                self.key.sign(&rng, data).expect("signs").as_ref().to_vec()
            })
            .build();
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut zlib, &sign1.to_tagged_vec().expect("COSE"))
            .expect("in memory");
        format!("HC1:{}", base45::encode(zlib.finish().expect("in memory")))
    }
}

fn person(entry: (&str, Value)) -> Value {
    let mut dgc = json!({"ver": "1.3.0", "nam": {"fn": "Mustermann", "fnt": "MUSTERMANN", "gn": "Erika", "gnt": "ERIKA"}, "dob": "1964-08-12"});
    dgc[entry.0] = json!([entry.1]);
    dgc
}

fn day(days_ago: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::days(days_ago))
        .format("%Y-%m-%d")
        .to_string()
}

fn vaccination(days_ago: i64, dose: u32) -> Value {
    person((
        "v",
        json!({"tg": "840539006", "vp": "1119349007", "mp": "EU/1/20/1528", "ma": "ORG-100030215",
        "dn": dose, "sd": 2, "dt": day(days_ago), "co": "AT", "is": "BMSGPK", "ci": "URN:UVCI:01:AT:10807843F94AEE0EE5093FBC254BD813#B"}),
    ))
}

fn test_result(hours_ago: i64, result: &str) -> Value {
    let sc = (chrono::Utc::now() - chrono::Duration::hours(hours_ago)).to_rfc3339();
    person((
        "t",
        json!({"tg": "840539006", "tt": "LP6464-4", "sc": sc, "tr": result, "tc": "Testzentrum",
        "co": "AT", "is": "BMSGPK", "ci": "URN:UVCI:01:AT:71EE2559DE38C6BF7304FB65A1A451EC#3"}),
    ))
}

fn recovery() -> Value {
    person((
        "r",
        json!({"tg": "840539006", "fr": day(40), "co": "AT", "is": "BMSGPK", "df": day(29), "du": day(-150),
        "ci": "URN:UVCI:01:AT:858CC18CFCF5965EF82F60E493349AA5#K"}),
    ))
}

/// The EU's VR-EU-0003 in substance: a vaccination counts 14 days after its date.
fn fourteen_days_rule() -> Value {
    json!({"Identifier": "VR-CN-0001", "CertificateType": "Vaccination",
        "Description": [{"lang": "en", "desc": "14 days must have passed since vaccination"}, {"lang": "zh", "desc": "接种后须满 14 天"}],
        "Logic": {"not-before": [{"plusTime": [{"var": "external.validationClock"}, 0, "day"]},
                                 {"plusTime": [{"var": "payload.v.0.dt"}, 14, "day"]}]}})
}

fn dcc_policy() -> Value {
    let mut policy = open_policy();
    policy["dcc"] = json!({"accepts": ["test", "vaccination"], "test_within_hours": 72, "rules": [fourteen_days_rule()]});
    policy
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_eu_certificate_passes_a_venue_that_admits_it_once_its_signer_is_trusted() {
    let app = spawn_app().await;
    let device = app
        .device_at("pudong-arrivals", dcc_policy(), &["verify"])
        .await;
    let vaccinator = signer(&[2]);
    let tester = signer(&[1]);
    // No DCC key usage: any type.
    let any = signer(&[]);
    let reason = |body: &Value| body["reason"].as_str().unwrap_or_default().to_owned();

    // Before its signer is trusted: refused for the key id.
    let (status, before) = app
        .verify(
            &device,
            json!({"code": vaccinator.code(&vaccination(30, 2), 86_400)}),
        )
        .await;
    assert_eq!(
        (status, reason(&before)),
        (200, "unknown_kid".into()),
        "{before}"
    );

    // The upload: admin only, every certificate checked, the field naming which.
    let put = |token: String, body: Value| {
        app.http
            .put(app.url("/v1/trust/dcc-signers"))
            .bearer_auth(token)
            .json(&body)
            .send()
    };
    let admin = app.admin().await;
    let r = put(
        admin.clone(),
        json!({"certificates": [vaccinator.certificate, "not base64!"]}),
    )
    .await
    .expect("put");
    problem(r, 422, "certificates[1]").await;
    let r = put(
        admin.clone(),
        json!({"certificates": [STANDARD.encode(b"not a certificate")]}),
    )
    .await
    .expect("put");
    problem(r, 422, "certificates[0]").await;
    let r = put(admin.clone(), json!({"certificates": []}))
        .await
        .expect("put");
    problem(r, 422, "certificates").await;
    let guard = app.identity.official(&["verify"], None).await;
    let r = put(guard, json!({"certificates": [vaccinator.certificate]}))
        .await
        .expect("put");
    assert_eq!(r.status(), 403);
    let r = put(admin.clone(), json!({"certificates": [vaccinator.certificate, tester.certificate, any.certificate, vaccinator.certificate]}))
        .await
        .expect("put");
    assert_eq!(r.status(), 200);
    let stored: Value = r.json().await.expect("json");
    assert_eq!(
        stored["signers"].as_array().map(Vec::len),
        Some(3),
        "{stored}"
    );
    let listed: Value = app
        .http
        .get(app.url("/v1/trust/dcc-signers"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    let kids: Vec<&str> = listed["signers"]
        .as_array()
        .expect("signers")
        .iter()
        .filter_map(|s| s["kid"].as_str())
        .collect();
    assert!(
        kids.contains(&STANDARD.encode(&vaccinator.kid).as_str()),
        "{listed}"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM audit_log WHERE action = 'trust.dcc_signers'")
            .await,
        1
    );

    // A complete vaccination a month old passes, with what the guard compares with the passport.
    let (_, pass) = app
        .verify(
            &device,
            json!({"code": vaccinator.code(&vaccination(30, 2), 86_400)}),
        )
        .await;
    assert_eq!(
        (reason(&pass), pass["decision"].as_str()),
        ("admitted".into(), Some("pass")),
        "{pass}"
    );
    assert_eq!(pass["certificate_type"], "vaccination");
    assert_eq!(pass["masked_name"], "MUSTERMANN E*");
    assert_eq!(pass["issuer"], "AT");
    assert_eq!(pass["rule"], "venue.dcc");
    // A fresh negative test passes too.
    let (_, pass) = app
        .verify(
            &device,
            json!({"code": tester.code(&test_result(5, "260415000"), 86_400)}),
        )
        .await;
    assert_eq!(reason(&pass), "admitted", "{pass}");

    // Each condition denies with its own reason.
    let cases = [
        (
            vaccinator.code(&vaccination(3, 2), 86_400),
            "business_rule",
            "venue.dcc.rules",
        ),
        (
            vaccinator.code(&vaccination(30, 1), 86_400),
            "vaccination_incomplete",
            "dcc.vaccination",
        ),
        (
            tester.code(&test_result(80, "260415000"), 86_400),
            "test_too_old",
            "venue.dcc.test_within_hours",
        ),
        (
            tester.code(&test_result(5, "260373001"), 86_400),
            "test_not_negative",
            "dcc.test",
        ),
        (
            any.code(&recovery(), 86_400),
            "certificate_type_not_admitted",
            "venue.dcc.accepts",
        ),
        // A signer limited to tests signing a vaccination.
        (
            tester.code(&vaccination(30, 2), 86_400),
            "key_usage",
            "code",
        ),
        (vaccinator.code(&vaccination(30, 2), -31), "expired", "code"),
    ];
    for (code, expected, rule) in cases {
        let (_, deny) = app.verify(&device, json!({"code": code})).await;
        assert_eq!(
            (
                reason(&deny).as_str(),
                deny["rule"].as_str(),
                deny["decision"].as_str()
            ),
            (expected, Some(rule), Some("deny")),
            "{deny}"
        );
    }
    let (_, deny) = app
        .verify(
            &device,
            json!({"code": vaccinator.code(&vaccination(3, 2), 86_400)}),
        )
        .await;
    assert!(
        deny["reasons"][0]["en"]
            .as_str()
            .is_some_and(|t| t.contains("VR-CN-0001")),
        "{deny}"
    );
    // Clocks differ: issued 10 s ahead of the gate, or expired 10 s ago, is within verification.leeway_seconds (30);
    // a minute is not.
    for (issued, valid_for, expected) in [
        (10, 86_400, "admitted"),
        (-600, -10, "admitted"),
        (60, 86_400, "not_yet_valid"),
        (-600, -60, "expired"),
    ] {
        let (_, answer) = app
            .verify(
                &device,
                json!({"code": vaccinator.code_issued(&vaccination(30, 2), issued, valid_for)}),
            )
            .await;
        assert_eq!(
            reason(&answer),
            expected,
            "issued {issued}, valid for {valid_for}: {answer}"
        );
    }
    // A tampered code: one character of the base45 changed.
    let mut tampered = vaccinator.code(&vaccination(30, 2), 86_400);
    let at = tampered.len() - 20;
    let swapped = if &tampered[at..=at] == "A" { "B" } else { "A" };
    tampered.replace_range(at..=at, swapped);
    let (_, deny) = app.verify(&device, json!({"code": tampered})).await;
    assert_eq!(deny["decision"], "deny", "{deny}");

    // A venue without a dcc policy admits none.
    let plain = app
        .device_at("tianhe-mall", open_policy(), &["verify"])
        .await;
    let (_, deny) = app
        .verify(
            &plain,
            json!({"code": vaccinator.code(&vaccination(30, 2), 86_400)}),
        )
        .await;
    assert_eq!(reason(&deny), "dcc_not_admitted", "{deny}");

    // Every judgement was recorded.
    assert_eq!(
        app.count("SELECT count(*) FROM scan_events WHERE venue_id = 'pudong-arrivals'")
            .await,
        16
    );
    // Too long a code is refused as input, naming the field.
    let (status, body) = app
        .verify(
            &device,
            json!({"code": format!("HC1:{}", "A".repeat(5000))}),
        )
        .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (422, Some("code")),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_venue_policy_with_a_rule_that_is_not_certlogic_is_refused_naming_it() {
    let app = spawn_app().await;
    let mut policy = dcc_policy();
    policy["dcc"]["rules"] = json!([fourteen_days_rule(), {"Identifier": "X", "CertificateType": "Test", "Logic": {"noSuchOperator": [1]}}]);
    let r = app
        .put_venue(
            "bad-rules",
            &json!({"name": "x", "region": "440106", "policy": policy}),
        )
        .await;
    problem(r, 422, "policy.dcc.rules[1]").await;
    let mut policy = dcc_policy();
    policy["dcc"]["accepts"] = json!([]);
    let r = app
        .put_venue(
            "no-types",
            &json!({"name": "x", "region": "440106", "policy": policy}),
        )
        .await;
    problem(r, 422, "policy.dcc.accepts").await;
    let mut policy = dcc_policy();
    policy["dcc"]["accepts"] = json!(["passport"]);
    let r = app
        .put_venue(
            "bad-type",
            &json!({"name": "x", "region": "440106", "policy": policy}),
        )
        .await;
    assert_eq!(r.status(), 422);
}
