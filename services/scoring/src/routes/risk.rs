//! Region risk levels: officials set them, everyone reads the five-colour county map.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use hc_domain::RegionCode;
use hc_platform::ApiError;
use hc_platform::auth::{Official, RiskWrite};
use hc_platform::http::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::facts::{RiskLevel, RiskMap};
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
pub struct RiskRequest {
    /// low, medium or high.
    #[schema(example = "high")]
    pub level: String,
    /// When the level applies (default now). A later time is applied by the scheduler when it comes.
    pub effective_from: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RiskSet {
    pub region: String,
    pub level: String,
    pub effective_from: DateTime<Utc>,
    /// `started`: everyone seen there is being recoloured now; `scheduled`: from effective_from.
    pub recolouring: String,
}

/// Set a region's risk level. Everyone seen there within the lookback is recoloured (in the background; the
/// answer does not wait for it).
#[utoipa::path(put, path = "/v1/regions/{code}/risk", tag = "regions", request_body = RiskRequest, security(("bearer" = ["risk:write"])),
    params(("code" = String, Path, description = "GB/T 2260 code: a county, a city (covers its counties) or a province")),
    responses(
        (status = 202, description = "Stored; recolouring started or scheduled", body = RiskSet),
        (status = 403, description = "Lacks risk:write or the region", body = hc_platform::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "A county whose risk follows the five-colour county map (scoring.county_map.sets_risk_in): override its level instead", body = hc_platform::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is invalid", body = hc_platform::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn put(
    state: web::Data<AppState>,
    official: Official<RiskWrite>,
    path: web::Path<String>,
    Json(body): Json<RiskRequest>,
) -> Result<HttpResponse, ApiError> {
    let region = RegionCode::parse(&path).map_err(|e| ApiError::unprocessable("code", e.reason))?;
    official.require_region(region)?;
    if region.level() == hc_domain::RegionLevel::County && state.county_map.sets_risk(region) {
        return Err(ApiError::Conflict {
            field: Some("code".into()),
            detail: format!(
                "{region}'s risk follows the five-colour county map here: override its level with PUT \
                 /v1/map/counties/{region}/override"
            ),
        });
    }
    let level = (body.level.trim().parse::<RiskLevel>())
        .map_err(|_| ApiError::unprocessable("level", "must be low, medium or high"))?;
    let now = Utc::now();
    let effective_from = body.effective_from.unwrap_or(now);
    if effective_from < now - chrono::Duration::days(1) {
        return Err(ApiError::unprocessable(
            "effective_from",
            "must not be more than a day in the past",
        ));
    }
    let code = region.to_string();
    let mut client = state.db.get().await?;
    let tx = client.transaction().await?;
    crate::db::region_risk::set(&tx, &code, level, effective_from, &official.client_id).await?;
    tx.commit().await?;
    // This replica's map and recolouring see the level at once; the others within their snapshot refresh.
    state.recolourer.invalidate();
    tracing::info!(region = %code, level = level.as_str(), "risk level set");
    let started = effective_from <= Utc::now();
    if started {
        let recolourer = state.recolourer.clone();
        tokio::spawn(async move {
            if let Err(err) = crate::scheduler::apply_due_risks(&recolourer).await {
                tracing::warn!(error = %err, "recolouring after a risk change failed; the scheduler retries");
            }
        });
    }
    Ok(HttpResponse::Accepted().json(RiskSet {
        region: code,
        level: level.as_str().into(),
        effective_from,
        recolouring: if started { "started" } else { "scheduled" }.into(),
    }))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MapEntry {
    pub region: String,
    pub name: String,
    /// The level set for this region itself (null when only an enclosing region's level applies).
    pub level: Option<String>,
    /// red (high), orange (medium), yellow (a high-risk region in its city), blue (a medium- or high-risk region
    /// in its province); every county not listed is green.
    pub map_colour: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RiskMapView {
    pub regions: Vec<MapEntry>,
}

fn map_colour(region: &str, risk: &RiskMap) -> &'static str {
    match risk.level(region) {
        RiskLevel::High => return "red",
        RiskLevel::Medium => return "orange",
        RiskLevel::Low => {}
    }
    let city = &region[..4];
    let province = &region[..2];
    if risk
        .entries()
        .any(|(r, l)| l == RiskLevel::High && r.starts_with(city))
    {
        "yellow"
    } else if risk
        .entries()
        .any(|(r, l)| l != RiskLevel::Low && r.starts_with(province))
    {
        "blue"
    } else {
        "green"
    }
}

/// The officials' three-level risk levels in force, drawn county by county in five colours (not Zhejiang's county
/// map computed from the facts: that is `GET /v1/map`). Cached: an `ETag` follows every change, and a client's
/// `If-None-Match` gets a 304.
#[utoipa::path(get, path = "/v1/regions/risk", tag = "regions",
    responses(
        (status = 200, description = "Every county that is not green", body = RiskMapView),
        (status = 304, description = "Unchanged since the ETag sent"),
    ))]
pub async fn map(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    // The levels in effect are checked at most once a second (one small query), and the map is rendered once per
    // change of them: a public page that everyone refreshes must not cost a database read per request.
    let snapshot = state.recolourer.snapshot_within(MAP_REFRESH).await?;
    let generation = snapshot.risk_generation;
    let etag = format!("\"risk-{generation}\"");
    if let Some(unchanged) = super::cached::unchanged(&req, &etag) {
        return Ok(unchanged);
    }
    let rendered = state.risk_map.lock().ok().and_then(|m| {
        m.as_ref()
            .filter(|(g, _)| *g == generation)
            .map(|(_, body)| body.clone())
    });
    let body = match rendered {
        Some(body) => body,
        None => {
            let body = web::Bytes::from(
                serde_json::to_vec(&render_map(&snapshot.risk)).map_err(anyhow::Error::from)?,
            );
            metrics::counter!("scoring_risk_map_renders_total").increment(1);
            if let Ok(mut m) = state.risk_map.lock() {
                *m = Some((generation, body.clone()));
            }
            body
        }
    };
    Ok(super::cached::json(&etag, body))
}

/// How long a replica serves the map without checking the levels in effect; the replica that sets a level sees it
/// at once.
const MAP_REFRESH: std::time::Duration = std::time::Duration::from_secs(1);

/// Counties of every province with a region at risk, coloured.
fn render_map(risk: &RiskMap) -> RiskMapView {
    let provinces: std::collections::BTreeSet<String> = risk
        .entries()
        .filter(|(_, l)| *l != RiskLevel::Low)
        .map(|(r, _)| r[..2].to_owned())
        .collect();
    let mut regions = Vec::new();
    for county in hc_domain::RegionCode::counties() {
        let code = county.to_string();
        if !provinces.contains(&code[..2]) {
            continue;
        }
        let colour = map_colour(&code, risk);
        if colour != "green" {
            regions.push(MapEntry {
                level: risk.own(&code).map(|l| l.as_str().to_owned()),
                name: county.name().to_owned(),
                region: code,
                map_colour: colour.to_owned(),
            });
        }
    }
    RiskMapView { regions }
}
