//! Appeals (GB/T 38963's correction): a citizen files one with a reason; an official accepts it with an override
//! colour and an expiry, or rejects it with a reason. The only way a colour is ever set by hand, and every
//! resolution is audited.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use hc_domain::Colour;
use hc_platform::ApiError;
use hc_platform::auth::{AppealsResolve, Citizen, Official};
use hc_platform::http::{Json, idempotency_key};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::audit::{self, Entry};
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
pub struct AppealRequest {
    /// Why the colour is wrong (10 to 2000 characters).
    #[schema(example = "我的行程卡显示到访高风险地区，但那是邻县基站信号，我当天在家。")]
    pub reason: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AppealView {
    pub id: Uuid,
    pub person_id: Uuid,
    pub reason: String,
    pub colour_at_filing: String,
    /// open, accepted or rejected.
    pub state: String,
    pub filed_at: DateTime<Utc>,
    pub resolution: Option<String>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub override_colour: Option<String>,
    pub override_until: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, person_id, reason, colour_at_filing, state, filed_at, resolution, resolved_at, override_colour, override_until";

fn view(r: &tokio_postgres::Row) -> AppealView {
    AppealView {
        id: r.get(0),
        person_id: r.get(1),
        reason: r.get(2),
        colour_at_filing: r.get(3),
        state: r.get(4),
        filed_at: r.get(5),
        resolution: r.get(6),
        resolved_at: r.get(7),
        override_colour: r.get(8),
        override_until: r.get(9),
    }
}

/// File an appeal against the current colour. A retry with the same `Idempotency-Key` returns the first answer.
#[utoipa::path(post, path = "/v1/appeals", tag = "appeals", request_body = AppealRequest, security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "A retry with the same key returns the first answer")),
    responses(
        (status = 201, description = "Filed", body = AppealView),
        (status = 409, description = "An appeal is already open", body = hc_platform::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is invalid", body = hc_platform::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn file(
    state: web::Data<AppState>,
    Citizen(person): Citizen,
    req: HttpRequest,
    Json(body): Json<AppealRequest>,
) -> Result<HttpResponse, ApiError> {
    let reason = body.reason.trim();
    if !(10..=2000).contains(&reason.chars().count()) {
        return Err(ApiError::unprocessable(
            "reason",
            "must be 10 to 2000 characters",
        ));
    }
    let key = idempotency_key(&req)?;
    let mut client = state.db.get().await?;
    let tx = client.transaction().await?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext('appeal:' || $1::uuid::text))",
        &[&person.0],
    )
    .await?;
    if let Some(key) = &key
        && let Some(first) = tx
            .query_opt(
                &format!(
                    "SELECT {COLUMNS} FROM appeals WHERE person_id = $1 AND idempotency_key = $2"
                ),
                &[&person.0, key],
            )
            .await?
    {
        return Ok(HttpResponse::Created().json(view(&first)));
    }
    let open: bool = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM appeals WHERE person_id = $1 AND state = 'open')",
            &[&person.0],
        )
        .await?
        .get(0);
    if open {
        return Err(ApiError::Conflict {
            field: None,
            detail: "an appeal of this person is already open".into(),
        });
    }
    let colour: String = tx
        .query_opt(
            "SELECT colour FROM status WHERE person_id = $1",
            &[&person.0],
        )
        .await?
        .map(|r| r.get(0))
        .ok_or(ApiError::NotFound { what: "status" })?;
    let row = tx
        .query_one(
            &format!(
                "INSERT INTO appeals (id, person_id, reason, colour_at_filing, state, idempotency_key)
                 VALUES ($1, $2, $3, $4, 'open', $5) RETURNING {COLUMNS}"
            ),
            &[&Uuid::new_v4(), &person.0, &reason, &colour, &key],
        )
        .await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().json(view(&row)))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AppealPage {
    pub appeals: Vec<AppealView>,
    pub next_cursor: Option<String>,
}

/// The signed-in citizen's appeals, newest first.
#[utoipa::path(get, path = "/v1/appeals/mine", tag = "appeals", security(("bearer" = [])),
    responses((status = 200, description = "The citizen's appeals", body = AppealPage)))]
pub async fn mine(
    state: web::Data<AppState>,
    Citizen(person): Citizen,
) -> Result<web::Json<AppealPage>, ApiError> {
    let client = state.db.get().await?;
    let rows = client
        .query(
            &format!("SELECT {COLUMNS} FROM appeals WHERE person_id = $1 ORDER BY filed_at DESC LIMIT 100"),
            &[&person.0],
        )
        .await?;
    Ok(web::Json(AppealPage {
        appeals: rows.iter().map(view).collect(),
        next_cursor: None,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct OpenQuery {
    /// 1 to 100 (default 50).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Open appeals, oldest first, for the officials who resolve them.
#[utoipa::path(get, path = "/v1/appeals", tag = "appeals", params(OpenQuery), security(("bearer" = [])),
    responses((status = 200, description = "Open appeals", body = AppealPage)))]
pub async fn open(
    state: web::Data<AppState>,
    official: Official<AppealsResolve>,
    query: web::Query<OpenQuery>,
) -> Result<web::Json<AppealPage>, ApiError> {
    let limit = query.limit.unwrap_or(50);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::unprocessable("limit", "must be 1 to 100"));
    }
    let (after_time, after_id) = hc_platform::http::cursor::parse(query.cursor.as_deref())?;
    // A regional client sees the appeals of people living in its region.
    let (lo, hi) = match official.region {
        Some(r) => crate::recolour::span(&r.to_string()),
        None => crate::recolour::span(crate::rules::NATIONAL),
    };
    let client = state.db.get().await?;
    let rows = client
        .query(
            &format!(
                "SELECT {COLUMNS} FROM appeals a
                 WHERE state = 'open' AND (filed_at, id) > ($1, $2)
                   AND EXISTS (SELECT 1 FROM subjects s WHERE s.person_id = a.person_id AND s.home_region BETWEEN $4 AND $5)
                 ORDER BY filed_at, id LIMIT $3"
            ),
            &[&after_time, &after_id, &(limit + 1), &lo, &hi],
        )
        .await?;
    let mut appeals: Vec<AppealView> = rows.iter().map(view).collect();
    let next_cursor = if appeals.len() as i64 > limit {
        appeals.truncate(limit as usize);
        appeals
            .last()
            .map(|a| hc_platform::http::cursor::format(a.filed_at, a.id))
    } else {
        None
    };
    Ok(web::Json(AppealPage {
        appeals,
        next_cursor,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct Resolution {
    /// `accept` or `reject`.
    pub decision: String,
    /// Why (shown to the citizen, and in the reasons when accepted).
    pub resolution: String,
    /// For `accept`: the colour that overrides the rules.
    #[schema(value_type = Option<String>, example = "green")]
    pub colour: Option<Colour>,
    /// For `accept`: until when (at most scoring.appeal_max_override_days ahead).
    pub until: Option<DateTime<Utc>>,
}

/// Accept an appeal (the override colour holds until `until`, shown in the reasons) or reject it. Audited.
#[utoipa::path(post, path = "/v1/appeals/{id}/resolution", tag = "appeals", request_body = Resolution, security(("bearer" = [])),
    responses(
        (status = 200, description = "Resolved", body = AppealView),
        (status = 404, description = "No such appeal", body = hc_platform::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already resolved", body = hc_platform::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is invalid", body = hc_platform::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn resolve(
    state: web::Data<AppState>,
    official: Official<AppealsResolve>,
    path: web::Path<Uuid>,
    Json(body): Json<Resolution>,
) -> Result<web::Json<AppealView>, ApiError> {
    let id = path.into_inner();
    let resolution = body.resolution.trim();
    if !(4..=2000).contains(&resolution.chars().count()) {
        return Err(ApiError::unprocessable(
            "resolution",
            "must be 4 to 2000 characters",
        ));
    }
    let now = Utc::now();
    let (new_state, colour, until) = match body.decision.as_str() {
        "accept" => {
            let colour = body
                .colour
                .ok_or_else(|| ApiError::unprocessable("colour", "is required to accept"))?;
            let until = body
                .until
                .ok_or_else(|| ApiError::unprocessable("until", "is required to accept"))?;
            if until <= now
                || until > now + chrono::Duration::days(state.settings.appeal_max_override_days)
            {
                return Err(ApiError::unprocessable(
                    "until",
                    format!(
                        "must be in the next {} days",
                        state.settings.appeal_max_override_days
                    ),
                ));
            }
            ("accepted", Some(colour.as_str()), Some(until))
        }
        "reject" => ("rejected", None, None),
        _ => {
            return Err(ApiError::unprocessable(
                "decision",
                "must be accept or reject",
            ));
        }
    };
    let mut client = state.db.get().await?;
    let tx = client.transaction().await?;
    let current = tx
        .query_opt(
            "SELECT state, person_id FROM appeals WHERE id = $1 FOR UPDATE",
            &[&id],
        )
        .await?
        .ok_or(ApiError::NotFound { what: "appeal" })?;
    let person: Uuid = current.get(1);
    let home: Option<String> = tx
        .query_opt(
            "SELECT home_region FROM subjects WHERE person_id = $1",
            &[&person],
        )
        .await?
        .map(|r| r.get(0));
    let inside = home
        .as_deref()
        .and_then(|h| hc_domain::RegionCode::parse(h).ok())
        .is_some_and(|h| official.covers(h));
    if !inside {
        return Err(ApiError::forbidden(
            "this appeal's person lives outside the client's region scope",
        ));
    }
    if current.get::<_, String>(0) != "open" {
        return Err(ApiError::Conflict {
            field: None,
            detail: "this appeal is already resolved".into(),
        });
    }
    let row = tx
        .query_one(
            &format!(
                "UPDATE appeals SET state = $2, resolved_by = $3, resolved_at = now(), resolution = $4,
                     override_colour = $5, override_until = $6
                 WHERE id = $1 RETURNING {COLUMNS}"
            ),
            &[&id, &new_state, &official.client_id, &resolution, &colour, &until],
        )
        .await?;
    let outcome = match colour {
        Some(c) => format!(
            "accepted: {c} until {}",
            until.map(|u| u.to_rfc3339()).unwrap_or_default()
        ),
        None => "rejected".to_owned(),
    };
    audit::record(
        &tx,
        &Entry {
            actor: &official.client_id,
            action: "appeal.resolve",
            subject: Some(person),
            reason: Some(resolution),
            outcome: &outcome,
        },
    )
    .await?;
    let index: Option<Vec<u8>> = tx
        .query_opt(
            "SELECT id_index FROM subjects WHERE person_id = $1",
            &[&person],
        )
        .await?
        .map(|r| r.get(0));
    tx.commit().await?;
    if let (Some(index), Some(_)) = (index, colour) {
        // The override shows at once (and its end is the person's next recheck).
        state.recolourer.recolour(vec![index]).await?;
    }
    Ok(web::Json(view(&row)))
}
