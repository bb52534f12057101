//! Citizens' check-ins with a venue code (`POST /v1/checkins`), recorded like scans and announced to scoring as a
//! visit to the venue's region; and the co-traveller self-check (`GET /v1/checkins/exposure`): was any venue I
//! checked into visited by a case within the same hour, without saying who.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, SubsecRound, Utc};
use hc_platform::ApiError;
use hc_platform::auth::Citizen;
use hc_platform::http::{Json, idempotency_key};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::db;
use crate::db::checkin_keys::REMEMBERED_SECONDS;
use crate::routes::venues::venue_of_code;
use crate::routes::verify::record_scan;
use crate::scans::{Recorded, ScanRecord};
use crate::state::AppState;

/// How long a key stays claimed by a check-in still being recorded. A request cut off by the request timeout never
/// gets to answer or free it; this frees it for the client's retry (it was a day: under `make chaos`'s slow-postgres a
/// check-in whose first try timed out answered 409 to every retry). Longer than the request timeout (5 s) and the
/// scan log's commit behind it.
const PENDING_SECONDS: u64 = 30;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckinRequest {
    /// What the venue's QR code holds (`HCV1:…`).
    pub venue_code: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CheckinView {
    pub id: Uuid,
    pub venue: String,
    pub venue_name: String,
    pub at: DateTime<Utc>,
}

/// Check in at a venue. Answered once the check-in is durable; scoring receives it as a visit. With an
/// `Idempotency-Key`, a repeat within a day answers the first check-in again instead of recording another.
#[utoipa::path(post, path = "/v1/checkins", tag = "checkins", request_body = CheckinRequest, security(("bearer" = [])),
    responses(
        (status = 201, description = "Recorded (or, for a repeated Idempotency-Key, the first check-in)", body = CheckinView),
        (status = 409, description = "A check-in with this Idempotency-Key is still being recorded: retry after Retry-After", body = hc_platform::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a venue code of this platform", body = hc_platform::error::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Not recorded, or (cut off by the request timeout) not known to be: retry with the same Idempotency-Key; or the registration has not reached this service yet", body = hc_platform::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn checkin(
    state: web::Data<AppState>,
    citizen: Citizen,
    req: HttpRequest,
    Json(body): Json<CheckinRequest>,
) -> Result<HttpResponse, ApiError> {
    let person = citizen.0.0;
    let Some(key) = idempotency_key(&req)? else {
        return record_checkin(&state, person, &body, None)
            .await
            .map(|view| HttpResponse::Created().json(view));
    };
    // The key is claimed twice. In Redis, the fast path: the first request records and leaves its answer there for a
    // day, a repeat gets that answer, and one arriving while the first is still in flight (up to PENDING_SECONDS) is
    // told to retry. In PostgreSQL, in the transaction that records the check-in: what makes a repeat of an
    // acknowledged check-in find it even when Redis has lost the key, or cannot be reached at all.
    let idem = state.store.key(&format!("idem:checkin:{person}:{key}"));
    let mut conn = state.store.conn();
    let claimed: Result<Option<String>, _> = redis::cmd("SET")
        .arg(&idem)
        .arg("pending")
        .arg("NX")
        .arg("GET")
        .arg("EX")
        .arg(PENDING_SECONDS)
        .query_async(&mut conn)
        .await;
    // Ours to free if recording fails; a claim Redis did not take may be another request's.
    let ours = matches!(claimed, Ok(None));
    let claimed = claimed.unwrap_or_else(|err| {
        tracing::warn!(error = %err, "check-in key not claimed in Redis; PostgreSQL's claim alone decides");
        None
    });
    match claimed.as_deref() {
        None => {}
        Some("pending") => {
            // A first try cut off by the request timeout never frees its claim, though its check-in may be durable:
            // PostgreSQL's claim says so, and then that is the answer.
            if let Some(first) = recorded_checkin(&state, person, &key).await? {
                return Ok(HttpResponse::Created().json(first));
            }
            return Err(ApiError::InProgress {
                field: Some("Idempotency-Key".into()),
                detail: "a check-in with this key is still being recorded; retry".into(),
                retry_after: 1,
            });
        }
        Some(done) => {
            let view: CheckinView = serde_json::from_str(done).map_err(anyhow::Error::from)?;
            return Ok(HttpResponse::Created().json(view));
        }
    }
    match record_checkin(&state, person, &body, Some(&key)).await {
        Ok(view) => {
            // The check-in is durable already; Redis failing to remember the answer only costs a repeat the slower
            // path through PostgreSQL.
            let answer = serde_json::to_string(&view).map_err(anyhow::Error::from)?;
            let remembered = redis::cmd("SET")
                .arg(&idem)
                .arg(answer)
                .arg("EX")
                .arg(REMEMBERED_SECONDS)
                .query_async::<()>(&mut conn)
                .await;
            if let Err(err) = remembered {
                tracing::warn!(error = %err, "a check-in's answer not remembered in Redis");
            }
            Ok(HttpResponse::Created().json(view))
        }
        Err(err) => {
            // Nothing was recorded: the key is free for the retry.
            if ours {
                let _ = redis::cmd("DEL")
                    .arg(&idem)
                    .query_async::<()>(&mut conn)
                    .await;
            }
            Err(err)
        }
    }
}

/// Records a check-in, or, when `key` names one recorded before, answers that one.
async fn record_checkin(
    state: &AppState,
    person: Uuid,
    body: &CheckinRequest,
    key: Option<&str>,
) -> Result<CheckinView, ApiError> {
    let code = body.venue_code.trim();
    let venue_id = (code.len() <= 200)
        .then(|| venue_of_code(&state.index, code))
        .flatten()
        .ok_or_else(|| {
            ApiError::unprocessable("venue_code", "is not a venue code of this platform")
        })?;
    let venue = state.venues.by_id(venue_id).await?.ok_or_else(|| {
        ApiError::unprocessable("venue_code", "names a venue that no longer exists")
    })?;
    let Some(index) = db::persons::index_of(&state.db.get().await?, person).await? else {
        // The registration event is still on its way (seconds at most).
        return Err(ApiError::Unavailable {
            what: "this person's registration",
            retry_after: 2,
        });
    };
    // To the microsecond, as PostgreSQL keeps it: a repeat answered from there says the same time.
    let now = Utc::now().trunc_subsecs(6);
    let record = ScanRecord {
        person_id: Some(person),
        decision: "recorded",
        visit: Some((index, venue.region.clone())),
        idempotency_key: key.map(str::to_owned),
        ..ScanRecord::new("checkin", &venue.id, now)
    };
    let id = record.id;
    if record_scan(state, record).await? == Recorded::Repeat {
        return first_checkin(state, person, key.unwrap_or_default()).await;
    }
    Ok(CheckinView {
        id,
        venue: venue.id.clone(),
        venue_name: venue.name.clone(),
        at: now,
    })
}

/// The check-in recorded first under a person's key, as it was answered then.
async fn first_checkin(state: &AppState, person: Uuid, key: &str) -> Result<CheckinView, ApiError> {
    recorded_checkin(state, person, key)
        .await?
        .ok_or_else(|| anyhow::anyhow!("a check-in key repeated but not found").into())
}

/// The check-in a person's key names in PostgreSQL, if one was recorded under it.
async fn recorded_checkin(
    state: &AppState,
    person: Uuid,
    key: &str,
) -> Result<Option<CheckinView>, ApiError> {
    let Some((id, venue, at)) =
        db::checkin_keys::first(&state.db.get().await?, person, key).await?
    else {
        return Ok(None);
    };
    let venue_name = state
        .venues
        .by_id(&venue)
        .await?
        .map(|v| v.name.clone())
        .unwrap_or_default();
    Ok(Some(CheckinView {
        id,
        venue,
        venue_name,
        at,
    }))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Exposure {
    pub venue_name: String,
    /// The hour of the citizen's own visit (its start).
    pub hour: DateTime<Utc>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ExposureView {
    pub exposed: bool,
    /// The citizen's own visits that a case was near: the venue and the hour, never who or how many.
    pub exposures: Vec<Exposure>,
    pub lookback_days: i64,
}

/// The co-traveller self-check over the citizen's own check-ins and scans.
#[utoipa::path(get, path = "/v1/checkins/exposure", tag = "checkins", security(("bearer" = [])),
    responses((status = 200, description = "Whether a case was at a venue within the window of one of my visits", body = ExposureView)))]
pub async fn exposure(
    state: web::Data<AppState>,
    citizen: Citizen,
) -> Result<HttpResponse, ApiError> {
    let s = &state.settings;
    let window = db::scans::Window {
        minutes: i32::try_from(s.cotraveller_window_minutes).unwrap_or(60),
        case_days: i32::try_from(s.case_days).unwrap_or(14),
        lookback_days: i32::try_from(s.cotraveller_lookback_days).unwrap_or(14),
    };
    let exposures: Vec<Exposure> =
        db::scans::exposures(&state.db.get().await?, citizen.0.0, &window)
            .await?
            .into_iter()
            .map(|(venue_name, hour)| Exposure { venue_name, hour })
            .collect();
    Ok(HttpResponse::Ok().json(ExposureView {
        exposed: !exposures.is_empty(),
        exposures,
        lookback_days: s.cotraveller_lookback_days,
    }))
}
