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

use crate::audit::Entry;
use crate::db::{self, appeals};
use crate::state::AppState;
pub use appeals::AppealView;

#[derive(Debug, Deserialize, ToSchema)]
pub struct AppealRequest {
    /// Why the colour is wrong (10 to 2000 characters).
    #[schema(example = "我的行程卡显示到访高风险地区，但那是邻县基站信号，我当天在家。")]
    pub reason: String,
}

/// File an appeal against the current colour. A retry with the same `Idempotency-Key` returns the first answer.
#[utoipa::path(post, path = "/v1/appeals", tag = "appeals", request_body = AppealRequest, security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "A retry with the same key returns the first answer")),
    responses(
        (status = 201, description = "Filed", body = AppealView),
        (status = 404, description = "No colour yet for this person: nothing to appeal", body = hc_platform::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "An appeal is already open", body = hc_platform::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is invalid", body = hc_platform::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn file(
    state: web::Data<AppState>,
    Citizen(person): Citizen,
    req: HttpRequest,
    Json(body): Json<AppealRequest>,
) -> Result<HttpResponse, ApiError> {
    let reason = hc_platform::http::text("reason", &body.reason, 10..=2000)?;
    let key = idempotency_key(&req)?;
    let mut client = state.db.get().await?;
    let tx = client.transaction().await?;
    appeals::lock_person(&tx, person.0).await?;
    if let Some(key) = &key
        && let Some(first) = appeals::by_key(&tx, person.0, key).await?
    {
        return Ok(HttpResponse::Created().json(first));
    }
    if appeals::has_open(&tx, person.0).await? {
        return Err(ApiError::Conflict {
            field: None,
            detail: "an appeal of this person is already open".into(),
        });
    }
    let colour = appeals::colour_now(&tx, person.0)
        .await?
        .ok_or(ApiError::NotFound { what: "status" })?;
    let filed = appeals::file(&tx, person.0, reason, &colour, key.as_deref()).await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().json(filed))
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
    Ok(web::Json(AppealPage {
        appeals: appeals::of_person(&state.db.get().await?, person.0).await?,
        next_cursor: None,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OpenQuery {
    /// 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Open appeals, oldest first, for the officials who resolve them.
#[utoipa::path(get, path = "/v1/appeals", tag = "appeals", params(OpenQuery), security(("bearer" = ["appeals:resolve"])),
    responses((status = 200, description = "Open appeals", body = AppealPage)))]
pub async fn open(
    state: web::Data<AppState>,
    official: Official<AppealsResolve>,
    query: web::Query<OpenQuery>,
) -> Result<web::Json<AppealPage>, ApiError> {
    let limit = hc_platform::http::page_limit(query.limit, 50, 100)?;
    let after = hc_platform::http::cursor::parse(query.cursor.as_deref())?;
    // A regional client sees the appeals of people living in its region.
    let (lo, hi) = match official.region {
        Some(r) => crate::recolour::span(&r.to_string()),
        None => crate::recolour::span(crate::rules::NATIONAL),
    };
    let client = state.db.get().await?;
    let appeals = appeals::open_in(&client, (&lo, &hi), after, limit + 1).await?;
    let (appeals, next_cursor) = hc_platform::http::page(appeals, limit, |a| {
        hc_platform::http::cursor::format(a.filed_at, a.id)
    });
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
#[utoipa::path(post, path = "/v1/appeals/{id}/resolution", tag = "appeals", request_body = Resolution, security(("bearer" = ["appeals:resolve"])),
    params(("id" = uuid::Uuid, Path, description = "The appeal's id")),
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
    let resolution = hc_platform::http::text("resolution", &body.resolution, 4..=2000)?;
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
    let (current_state, person) = appeals::lock(&tx, id)
        .await?
        .ok_or(ApiError::NotFound { what: "appeal" })?;
    let home = db::subjects::home_region(&tx, person).await?;
    let inside = home
        .as_deref()
        .and_then(|h| hc_domain::RegionCode::parse(h).ok())
        .is_some_and(|h| official.covers(h));
    if !inside {
        return Err(ApiError::forbidden(
            "this appeal's person lives outside the client's region scope",
        ));
    }
    if current_state != "open" {
        return Err(ApiError::Conflict {
            field: None,
            detail: "this appeal is already resolved".into(),
        });
    }
    let resolved = appeals::resolve(
        &tx,
        id,
        &appeals::Decision {
            state: new_state,
            by: &official.client_id,
            resolution,
            colour,
            until,
        },
    )
    .await?;
    let outcome = match colour {
        Some(c) => format!(
            "accepted: {c} until {}",
            until.map(|u| u.to_rfc3339()).unwrap_or_default()
        ),
        None => "rejected".to_owned(),
    };
    Entry {
        actor: &official.client_id,
        action: "appeal.resolve",
        subject: Some(person),
        reason: Some(resolution),
        outcome: &outcome,
    }
    .record(&tx)
    .await?;
    let index = db::subjects::index_of(&tx, person).await?;
    tx.commit().await?;
    if let (Some(index), Some(_)) = (index, colour) {
        // The override shows at once (and its end is the person's next recheck).
        state.recolourer.recolour(vec![index]).await?;
    }
    Ok(web::Json(resolved))
}
