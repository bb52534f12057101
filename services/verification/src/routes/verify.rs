//! `POST /v1/verify`: a checkpoint device (bound to a venue) sends a scanned code, or an ID card number for someone
//! without a phone, and gets pass or deny with the rule that decided. The scan is durable before the answer.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use hc_domain::{Colour, IdNumber, Scope};
use hc_platform::ApiError;
use hc_platform::auth::{AnyScope, Official};
use hc_platform::http::Json;
use hc_token::dcc::{self, DccError};
use hc_token::{DecodeError, Validation};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::db;
use crate::policy::{self, Decision, Subject, Verdict};
use crate::scans::{RecordError, Recorded, ScanRecord};
use crate::state::AppState;
use crate::status;
use crate::venues::Venue;
use hc_platform::audit;

/// The longest code of ours accepted (a real one is at most 311 characters).
const MAX_CODE_LEN: usize = 1024;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// The scanned code: ours or another region's (`HCQ1:…`, at most 1,024 characters), or an EU Digital COVID
    /// Certificate (`HC1:…`, at most 4,096); needs the scope `verify`.
    pub code: Option<String>,
    /// Instead of a code: the 18-digit ID number on the card; needs the scope `verify:id`. Audited.
    pub id_number: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VerifyAnswer {
    pub decision: Decision,
    /// The colour judged (after re-judgement on the current status, and after another issuer's colour table).
    #[schema(value_type = Option<String>, example = "green")]
    pub colour: Option<Colour>,
    /// A stable code: `admitted`, a policy's (`venue_closed`, `colour_not_admitted`, `international_not_admitted`,
    /// `nat_too_old`, `no_negative_test`; for an EU DCC `dcc_not_admitted`, `certificate_type_not_admitted`,
    /// `test_not_negative`, `test_too_old`, `vaccination_incomplete`, `vaccination_too_recent`,
    /// `recovery_not_valid`, `business_rule`) or the code's (`bad_signature`, `expired`, `unknown_issuer`; for an EU
    /// DCC `unknown_kid`, `key_usage`, `signer_not_valid`, `not_yet_valid`, …).
    pub reason: &'static str,
    /// The rule that decided (`venue.policy`, `venue.colours`, …, or `code`).
    pub rule: &'static str,
    /// Why, for the guard (Chinese and English).
    pub reasons: Vec<ReasonText>,
    /// The issuing region of the code (or of this platform, on the ID-card path).
    pub issuer: Option<String>,
    /// `current_status`: judged on the person's status now, newer than (or as new as) the code's; `code`: on what
    /// the code says (another issuer's code, or no current status known here).
    pub judged_on: Option<&'static str>,
    /// On the ID-card path: the name, masked, to compare with the card; for an EU DCC, the family name as in the
    /// passport's machine-readable zone with the given name's initial, to compare with the passport.
    pub masked_name: Option<String>,
    /// For an EU DCC: `test`, `vaccination` or `recovery`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_type: Option<&'static str>,
    pub venue: String,
    pub scan_id: Uuid,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReasonText {
    pub zh: String,
    pub en: String,
}

enum Target {
    Code(String),
    IdCard(String),
}

/// Verify a code or an ID card at the device's venue.
#[utoipa::path(post, path = "/v1/verify", tag = "verify", request_body = VerifyRequest, security(("bearer" = [])),
    responses(
        (status = 200, description = "Pass or deny (a refused code is a deny, not an error); the scan is recorded", body = VerifyAnswer),
        (status = 403, description = "Lacks verify (or verify:id), or the device is bound to no venue", body = hc_platform::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Neither or both of code and id_number, an invalid ID number, or a code longer than its format allows (1,024 characters, 4,096 for HC1:)", body = hc_platform::error::Problem, content_type = "application/problem+json"),
        (status = 503, description = "The scan could not be recorded; nothing was acknowledged", body = hc_platform::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn verify(
    state: web::Data<AppState>,
    device: Official<AnyScope>,
    Json(body): Json<VerifyRequest>,
) -> Result<HttpResponse, ApiError> {
    // What to verify decides the scope it needs.
    let target = match (body.code, body.id_number) {
        (Some(code), None) => {
            device.require(Scope::Verify)?;
            Target::Code(code)
        }
        (None, Some(id)) => {
            device.require(Scope::VerifyId)?;
            Target::IdCard(id)
        }
        (Some(_), Some(_)) => {
            return Err(ApiError::unprocessable(
                "id_number",
                "send either code or id_number, not both",
            ));
        }
        (None, None) => {
            return Err(ApiError::unprocessable(
                "code",
                "is required (or id_number)",
            ));
        }
    };
    let venue = state
        .venues
        .of_device(&device.client_id)
        .await?
        .ok_or_else(|| {
            ApiError::forbidden(
                "this device is not bound to a venue (PUT /v1/venues/{id} lists its devices)",
            )
        })?;
    let now = Utc::now();
    let answer = match target {
        Target::Code(code) if code.trim().starts_with(dcc::PREFIX) => {
            by_dcc(&state, &venue, code.trim(), now)?
        }
        Target::Code(code) => by_code(&state, &venue, code.trim(), now).await?,
        Target::IdCard(id) => by_id_card(&state, &device.client_id, &venue, &id, now).await?,
    };
    let (judged, record) = answer;
    record_scan(
        &state,
        ScanRecord {
            client_id: Some(device.client_id.clone()),
            ..record
        },
    )
    .await?;
    metrics::counter!("verification_decisions_total", "decision" => judged.decision.as_str(), "reason" => judged.reason).increment(1);
    Ok(HttpResponse::Ok().json(judged))
}

pub(crate) async fn record_scan(
    state: &AppState,
    record: ScanRecord,
) -> Result<Recorded, ApiError> {
    state.scans.record(record).await.map_err(|err| {
        tracing::error!(error = %err, "a scan was not recorded; the gate is told to retry");
        match err {
            RecordError::Closed | RecordError::Commit(_) => ApiError::Unavailable {
                what: "the scan log",
                retry_after: 1,
            },
        }
    })
}

/// The answer to the gate and the scan record of one judgement, which say the same.
fn judged(
    verdict: Verdict,
    colour: Option<Colour>,
    issuer: Option<String>,
    judged_on: Option<&'static str>,
    venue: &Venue,
    mut record: ScanRecord,
) -> (VerifyAnswer, ScanRecord) {
    record.decision = verdict.decision.as_str();
    record.reason = Some(verdict.reason);
    record.colour = colour.map(Colour::as_str);
    let answer = VerifyAnswer {
        decision: verdict.decision,
        colour,
        reasons: vec![ReasonText {
            zh: verdict.zh,
            en: verdict.en,
        }],
        reason: verdict.reason,
        rule: verdict.rule,
        issuer,
        judged_on,
        masked_name: None,
        certificate_type: None,
        venue: venue.id.clone(),
        scan_id: record.id,
    };
    (answer, record)
}

fn refused(err: &DecodeError, unknown_issuer: Option<&str>) -> Verdict {
    let (reason, zh, en) = match (err, unknown_issuer) {
        (DecodeError::UnknownKeyId(_), Some(issuer)) => (
            "unknown_issuer",
            format!("不认可的发码地区 {issuer}"),
            format!("issuer {issuer} is not on the trust list"),
        ),
        (DecodeError::Expired(_), _) => (
            "expired",
            "健康码已过期，请刷新".to_owned(),
            "the code has expired; refresh it".to_owned(),
        ),
        (DecodeError::BadSignature, _) => (
            "bad_signature",
            "健康码签名无效".to_owned(),
            "the code's signature does not verify".to_owned(),
        ),
        (other, _) => (other.code(), "健康码无效".to_owned(), other.to_string()),
    };
    Verdict::deny(reason, "code", zh, en)
}

async fn by_code(
    state: &AppState,
    venue: &Venue,
    code: &str,
    now: DateTime<Utc>,
) -> Result<(VerifyAnswer, ScanRecord), ApiError> {
    if code.len() > MAX_CODE_LEN {
        return Err(ApiError::unprocessable(
            "code",
            format!("is longer than {MAX_CODE_LEN} characters"),
        ));
    }
    let mut record = ScanRecord::new("scan", &venue.id, now);
    let trust = state.trust.snapshot();
    let at = Validation {
        now: now.timestamp(),
        leeway: state.settings.leeway_seconds,
    };
    let claims = match hc_token::decode(code, &trust.store, at) {
        Ok(claims) => claims,
        Err(err) => {
            // What the code claims is untrusted, but it tells the guard whose code it was.
            let claimed = hc_token::inspect(code).ok().map(|(_, c)| c.issuer);
            let unknown = claimed
                .as_deref()
                .filter(|i| !trust.issuers.contains_key(*i));
            let verdict = refused(&err, unknown);
            record.issuer = claimed
                .clone()
                .filter(|i| i.len() == 6 && i.bytes().all(|b| b.is_ascii_digit()));
            return Ok(judged(verdict, None, claimed, None, venue, record));
        }
    };
    record.issuer = Some(claims.issuer.clone());
    let issuer = Some(claims.issuer.clone());
    let code_subject = Subject {
        colour: claims.colour,
        international: claims.flags.international(),
        negative_test_at: claims
            .negative_test_at
            .and_then(|t| DateTime::from_timestamp(t, 0)),
        // A stale code without its status time is as old as can be.
        stale_since: claims.flags.stale().then(|| {
            claims
                .status_at
                .and_then(|t| DateTime::from_timestamp(t, 0))
                .unwrap_or(DateTime::UNIX_EPOCH)
        }),
    };
    let peer_colours = trust
        .issuers
        .get(&claims.issuer)
        .and_then(|i| i.colours.as_ref());
    let (subject, judged_on) = match peer_colours {
        // Another region's code: its colour read through its table; its subject is opaque to us.
        Some(colours) => {
            let Some(colour) = colours.get(&claims.colour).copied() else {
                let verdict = Verdict::deny(
                    "colour_unmapped",
                    "trust.colours",
                    "发码地区的颜色无法对应".into(),
                    format!(
                        "issuer {}'s colour {} has no mapping here",
                        claims.issuer, claims.colour
                    ),
                );
                return Ok(judged(verdict, None, issuer, Some("code"), venue, record));
            };
            (
                Subject {
                    colour,
                    ..code_subject
                },
                "code",
            )
        }
        None => {
            let Some(person) = state.pseudonyms.open(&claims.subject) else {
                let verdict = Verdict::deny(
                    "unknown_subject",
                    "code",
                    "健康码持有人无法识别".into(),
                    "the code's subject cannot be resolved".into(),
                );
                return Ok(judged(verdict, None, issuer, None, venue, record));
            };
            record.person_id = Some(person);
            let current = match hc_platform::status_document::read(&state.store, person).await {
                Ok(c) => c,
                Err(err) => {
                    tracing::warn!(error = %err, "reading the current status failed; judging on the code");
                    None
                }
            };
            match current {
                // A status at least as new as the code's: a person turned red after the code was issued does not
                // pass on it.
                Some(c) if u64::try_from(c.version).is_ok_and(|v| v >= claims.status_version) => {
                    (status::subject(&c), "current_status")
                }
                _ => (code_subject, "code"),
            }
        }
    };
    let verdict = policy::judge(&venue.policy, &subject, now);
    Ok(judged(
        verdict,
        Some(subject.colour),
        issuer,
        Some(judged_on),
        venue,
        record,
    ))
}

fn refused_dcc(err: &DccError) -> Verdict {
    let (zh, en) = match err {
        DccError::UnknownKid(_) => (
            "证书签发者不在信任列表中",
            "the certificate's signer is not on the trust list".to_owned(),
        ),
        DccError::Expired => ("证书已过期", "the certificate has expired".to_owned()),
        DccError::BadSignature => (
            "证书签名无效",
            "the certificate's signature does not verify".to_owned(),
        ),
        DccError::KeyUsage(_) => ("签发者无权签发此类证书", err.to_string()),
        other => ("证书无效", other.to_string()),
    };
    Verdict::deny(err.code(), "code", zh.into(), en)
}

/// An EU Digital COVID Certificate: verified against the document signers, then judged on the venue's `dcc` policy.
/// Nothing of it is kept but the decision (the scan record has no person and no issuer: the DCC's subject is no one
/// registered here, and its issuer is a country, not a region).
fn by_dcc(
    state: &AppState,
    venue: &Venue,
    code: &str,
    now: DateTime<Utc>,
) -> Result<(VerifyAnswer, ScanRecord), ApiError> {
    if code.len() > dcc::MAX_CODE_LEN {
        return Err(ApiError::unprocessable(
            "code",
            format!("is longer than {} characters", dcc::MAX_CODE_LEN),
        ));
    }
    let record = ScanRecord::new("scan", &venue.id, now);
    let trust = state.trust.snapshot();
    let verified = match dcc::verify(
        code,
        &trust.dcc,
        now.timestamp_micros(),
        state.settings.leeway_seconds.saturating_mul(1_000_000),
    ) {
        Ok(verified) => verified,
        Err(err) => return Ok(judged(refused_dcc(&err), None, None, None, venue, record)),
    };
    let verdict = policy::judge_dcc(&venue.policy, &verified, now);
    let name = &verified.certificate.nam;
    let initial = name.given_icao.as_deref().and_then(|g| g.chars().next());
    let (mut answer, record) = judged(
        verdict,
        None,
        verified.issuer.clone(),
        Some("code"),
        venue,
        record,
    );
    answer.masked_name = Some(match initial {
        Some(initial) => format!("{} {initial}*", name.family_icao),
        None => name.family_icao.clone(),
    });
    answer.certificate_type = verified.certificate.kind().ok().map(|k| k.name());
    Ok((answer, record))
}

async fn by_id_card(
    state: &AppState,
    device: &str,
    venue: &Venue,
    id_number: &str,
    now: DateTime<Utc>,
) -> Result<(VerifyAnswer, ScanRecord), ApiError> {
    let id = IdNumber::parse(id_number, hc_domain::china_time::day_of(now))
        .map_err(|e| ApiError::unprocessable("id_number", e.reason))?;
    let index = state.index.id_number(&id);
    let client = state.db.get().await?;
    let row = db::persons::by_index(&client, &index).await?;
    let mut record = ScanRecord::new("id_card", &venue.id, now);
    record.issuer = Some(state.settings.issuer.clone());
    let (verdict, colour, person, masked) = match row {
        None => (
            Verdict::deny(
                "not_registered",
                "id_card",
                "此证件号未登记健康码".into(),
                "no one is registered with this ID number".into(),
            ),
            None,
            None,
            None,
        ),
        Some((person, masked)) => {
            match hc_platform::status_document::read(&state.store, person).await? {
                None => (
                    Verdict::deny(
                        "no_status",
                        "id_card",
                        "暂无健康码状态".into(),
                        "no status is known for this person yet".into(),
                    ),
                    None,
                    Some(person),
                    masked,
                ),
                Some(c) => (
                    policy::judge(&venue.policy, &status::subject(&c), now),
                    Some(c.colour),
                    Some(person),
                    masked,
                ),
            }
        }
    };
    // The read of a person's status by ID number is audited before anything is answered.
    audit::Entry {
        actor: device,
        action: "verify.id_card",
        subject: person,
        reason: Some(&venue.id),
        outcome: verdict.decision.as_str(),
    }
    .record(&client)
    .await?;
    record.person_id = person;
    let (mut a, record) = judged(
        verdict,
        colour,
        Some(state.settings.issuer.clone()),
        colour.map(|_| "current_status"),
        venue,
        record,
    );
    a.masked_name = masked.or_else(|| person.map(|_| "未知 (unknown)".to_owned()));
    Ok((a, record))
}
