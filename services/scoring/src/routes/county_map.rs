//! The five-colour county map and its indices: public reads of the map (from memory, with ETags), of a county's
//! history and of the published rules; an official's audited override.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use hc_domain::{RegionCode, RegionLevel};
use hc_platform::ApiError;
use hc_platform::auth::{Official, RiskWrite};
use hc_platform::http::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::audit::Entry;
use crate::county_map::rules::CountyLevel;
use crate::county_map::{CountyDetail, CountyMapView};
use crate::settings::CountyMapSettings;
use crate::state::AppState;

#[derive(Debug, Deserialize, IntoParams)]
pub struct MapQuery {
    /// The province's GB/T 2260 code (`330000`: Zhejiang).
    #[param(example = "330000", pattern = "^[0-9]{2}0000$")]
    pub province: String,
}

fn region_of_level(raw: &str, field: &str, want: RegionLevel) -> Result<RegionCode, ApiError> {
    let code = RegionCode::parse(raw).map_err(|e| ApiError::unprocessable(field, e.reason))?;
    if code.level() != want {
        let what = match want {
            RegionLevel::Province => "a province",
            RegionLevel::Prefecture => "a prefecture",
            RegionLevel::County => "a county",
        };
        return Err(ApiError::unprocessable(field, format!("must be {what}")));
    }
    Ok(code)
}

/// The province's five-colour county map: every county's level, the three-level risk it means, its reasons and
/// its indices over 14 days. Served from memory and rebuilt only when the map changes: an `ETag` follows every
/// change, and a client's `If-None-Match` gets a 304.
#[utoipa::path(get, path = "/v1/map", tag = "map", params(MapQuery),
    responses(
        (status = 200, description = "Every county of the province", body = CountyMapView,
            headers(("ETag" = String, description = "Changes with the map"))),
        (status = 304, description = "Unchanged since the ETag sent"),
        (status = 422, description = "`province` is missing or not a province's code", body = hc_platform::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn map(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<MapQuery>,
) -> Result<HttpResponse, ApiError> {
    let province = region_of_level(&query.province, "province", RegionLevel::Province)?;
    let (generation, body) = state.county_map.view(province).await?;
    let etag = format!("\"map-{generation}\"");
    Ok(super::cached::unchanged(&req, &etag).unwrap_or_else(|| super::cached::json(&etag, body)))
}

/// The published rules: the thresholds of the five levels and the scale of the flow index (docs/indices.md).
#[utoipa::path(get, path = "/v1/map/rules", tag = "map",
    responses((status = 200, description = "The thresholds in force", body = CountyMapSettings)))]
pub async fn rules(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(super::cached::PUBLIC)
        .json(state.county_map.settings())
}

/// One county: its level and reasons, every change of it with the counts the rules read, and its indices with
/// their inputs over 30 days, so anyone can recompute them.
#[utoipa::path(get, path = "/v1/map/counties/{code}", tag = "map",
    params(("code" = String, Path, description = "The county's GB/T 2260 code", pattern = "^[0-9]{6}$")),
    responses(
        (status = 200, description = "The county", body = CountyDetail),
        (status = 422, description = "`code` is not a county", body = hc_platform::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn county(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let county = region_of_level(&path, "code", RegionLevel::County)?;
    let detail = state.county_map.detail(county).await?;
    Ok(HttpResponse::Ok()
        .insert_header(super::cached::PUBLIC)
        .json(detail))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct OverrideRequest {
    /// green, blue, yellow, orange or red.
    pub level: CountyLevel,
    /// Why (10 to 500 characters): kept in the audit log, never shown on the public map.
    pub reason: String,
    /// When it ends (default in 7 days; at most `override_max_days` ahead, 30 by default).
    pub until: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OverrideSet {
    pub region: String,
    pub level: CountyLevel,
    pub until: DateTime<Utc>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct LiftRequest {
    /// Why (10 to 500 characters), for the audit log.
    pub reason: String,
}

/// The county's code, if it is a county inside the official's region scope.
fn county_in_scope(official: &Official<RiskWrite>, raw: &str) -> Result<String, ApiError> {
    let county = region_of_level(raw, "code", RegionLevel::County)?;
    official.require_region(county)?;
    Ok(county.to_string())
}

/// Sets a county's level by hand, overriding the published rules until `until`: audited with the reason, and the
/// map, the risk and the colours follow at once.
#[utoipa::path(put, path = "/v1/map/counties/{code}/override", tag = "map", request_body = OverrideRequest,
    security(("bearer" = ["risk:write"])),
    params(("code" = String, Path, description = "The county's GB/T 2260 code", pattern = "^[0-9]{6}$")),
    responses(
        (status = 200, description = "In force; the map shows it", body = OverrideSet),
        (status = 400, description = "The body is not JSON", body = hc_platform::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = hc_platform::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Lacks risk:write or the county", body = hc_platform::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is invalid", body = hc_platform::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn set_override(
    state: web::Data<AppState>,
    official: Official<RiskWrite>,
    path: web::Path<String>,
    Json(body): Json<OverrideRequest>,
) -> Result<HttpResponse, ApiError> {
    let code = county_in_scope(&official, &path)?;
    let reason = hc_platform::http::text("reason", &body.reason, 10..=500)?;
    let now = Utc::now();
    let max_days = state.county_map.settings().override_max_days;
    let until = body
        .until
        .unwrap_or(now + chrono::Duration::days(7.min(max_days)));
    if until <= now || until > now + chrono::Duration::days(max_days) {
        return Err(ApiError::unprocessable(
            "until",
            format!("must be in the future and at most {max_days} days ahead"),
        ));
    }
    let mut client = state.db.get().await?;
    let tx = client.transaction().await?;
    crate::db::county_map::insert_override(
        &tx,
        &code,
        body.level.as_str(),
        reason,
        &official.client_id,
        until,
    )
    .await?;
    Entry {
        actor: &official.client_id,
        action: "county_map.override",
        subject: None,
        reason: Some(&format!("{code} {}: {reason}", body.level)),
        outcome: "set",
    }
    .record(&tx)
    .await?;
    tx.commit().await?;
    drop(client);
    apply_now(&state).await;
    Ok(HttpResponse::Ok().json(OverrideSet {
        region: code,
        level: body.level,
        until,
    }))
}

/// Ends a county's override: the published rules' level applies again at once. Audited with the reason.
#[utoipa::path(post, path = "/v1/map/counties/{code}/override/lift", tag = "map", request_body = LiftRequest,
    security(("bearer" = ["risk:write"])),
    params(("code" = String, Path, description = "The county's GB/T 2260 code", pattern = "^[0-9]{6}$")),
    responses(
        (status = 204, description = "Lifted"),
        (status = 400, description = "The body is not JSON", body = hc_platform::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = hc_platform::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Lacks risk:write or the county", body = hc_platform::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No override in force", body = hc_platform::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is invalid", body = hc_platform::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn lift_override(
    state: web::Data<AppState>,
    official: Official<RiskWrite>,
    path: web::Path<String>,
    Json(body): Json<LiftRequest>,
) -> Result<HttpResponse, ApiError> {
    let code = county_in_scope(&official, &path)?;
    let reason = hc_platform::http::text("reason", &body.reason, 10..=500)?;
    let mut client = state.db.get().await?;
    let tx = client.transaction().await?;
    if !crate::db::county_map::lift_override(&tx, &code, &official.client_id).await? {
        return Err(ApiError::NotFound {
            what: "override in force",
        });
    }
    Entry {
        actor: &official.client_id,
        action: "county_map.lift",
        subject: None,
        reason: Some(&format!("{code}: {reason}")),
        outcome: "lifted",
    }
    .record(&tx)
    .await?;
    tx.commit().await?;
    drop(client);
    apply_now(&state).await;
    Ok(HttpResponse::NoContent().finish())
}

/// Recomputes the levels now and recolours in the background (the answer does not wait for everyone seen in the
/// county); if another replica is at it or it fails, this replica's loop recomputes shortly.
async fn apply_now(state: &AppState) {
    match state.county_map.levels().await {
        Ok(Some(done)) => {
            if done.risks > 0 {
                let map = state.county_map.clone();
                tokio::spawn(async move {
                    if let Err(err) = map.recolour().await {
                        tracing::warn!(error = %err, "recolouring after an override failed; the scheduler retries");
                    }
                });
            }
        }
        Ok(None) => state.recolourer.facts_arrived.notify_one(),
        Err(err) => {
            state.recolourer.facts_arrived.notify_one();
            tracing::warn!(error = %err, "recomputing the county map after an override failed; retrying");
        }
    }
}
