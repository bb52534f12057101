//! Venues: their policy and devices (`PUT /v1/venues/{id}`, admin), their venue code (场所码) to print at the door,
//! and who was there (`GET /v1/venues/{id}/visits`, trace:read, audited).

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use hc_domain::RegionCode;
use hc_platform::ApiError;
use hc_platform::auth::{Admin, Official, TraceRead};
use hc_platform::http::{Json, cursor};
use hc_platform::privacy::{BlindIndex, to_hex};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::db;
pub use crate::db::scans::Visit as VisitRecord;
use crate::policy::{self, Policy};
use crate::state::AppState;
use crate::venues::{self, Venue};
use hc_platform::audit;

/// What a venue code starts with.
pub const VENUE_CODE_PREFIX: &str = "HCV1:";

/// The text of a venue's code: its id and a tag keyed by the platform's secret, so that a code for a venue cannot
/// be made up (a check-in is a visit fact: it can turn someone's colour).
pub fn venue_code(index: &BlindIndex, venue_id: &str) -> String {
    let tag = index.of(
        hc_platform::privacy::Purpose::VenueCode,
        venue_id.as_bytes(),
    );
    format!("{VENUE_CODE_PREFIX}{venue_id}.{}", to_hex(&tag[..10]))
}

/// The venue a code names, if its tag is right.
pub fn venue_of_code<'a>(index: &BlindIndex, code: &'a str) -> Option<&'a str> {
    let (id, _) = code.strip_prefix(VENUE_CODE_PREFIX)?.rsplit_once('.')?;
    // Recomputed and compared whole; the tag is not secret once printed, only unforgeable.
    (venue_code(index, id) == code).then_some(id)
}

fn check_id(id: &str) -> Result<(), ApiError> {
    if (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        Ok(())
    } else {
        Err(ApiError::unprocessable(
            "id",
            "must be 1 to 64 of a-z, 0-9 and -",
        ))
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VenueRequest {
    #[schema(example = "体育西路地铁站 A 口")]
    pub name: String,
    /// The county (GB/T 2260) the venue is in: check-ins become visits to it.
    #[schema(example = "440106")]
    pub region: String,
    pub policy: Policy,
    /// Client ids of the checkpoint devices at this venue (a device is bound to one venue; listing it here moves it).
    #[serde(default)]
    pub devices: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VenueView {
    pub id: String,
    pub name: String,
    pub region: String,
    pub policy: Policy,
    pub devices: Vec<String>,
    /// What the venue's QR code holds (GET /v1/venues/{id}/code renders it).
    pub venue_code: String,
}

async fn view(state: &AppState, v: Venue) -> Result<VenueView, ApiError> {
    let devices = db::venues::devices(&state.db.get().await?, &v.id).await?;
    Ok(VenueView {
        venue_code: venue_code(&state.index, &v.id),
        id: v.id,
        name: v.name,
        region: v.region,
        policy: v.policy,
        devices,
    })
}

fn in_scope<S: hc_platform::auth::Needs>(
    official: &Official<S>,
    region: &str,
) -> Result<(), ApiError> {
    let region =
        RegionCode::parse(region).map_err(|e| ApiError::unprocessable("region", e.reason))?;
    official.require_region(region)
}

/// Create or replace a venue: its name, region, policy and devices.
#[utoipa::path(put, path = "/v1/venues/{id}", tag = "venues", request_body = VenueRequest, security(("bearer" = ["admin"])),
    params(("id" = String, Path, description = "1 to 64 of a-z, 0-9 and -")),
    responses(
        (status = 200, description = "Stored", body = VenueView),
        (status = 403, description = "Lacks admin, or the region (or the venue a listed device is bound to) is outside the client's scope", body = hc_platform::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is invalid (a policy that widens the colour rule names the colour)", body = hc_platform::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn put(
    state: web::Data<AppState>,
    official: Official<Admin>,
    path: web::Path<String>,
    Json(body): Json<VenueRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    check_id(&id)?;
    let name = hc_platform::http::text("name", &body.name, 1..=100)?;
    in_scope(&official, &body.region)?;
    let ceiling = state.settings.ceiling()?;
    policy::check(&body.policy, &ceiling)
        .map_err(|(field, reason)| ApiError::unprocessable(field, reason))?;
    for (i, d) in body.devices.iter().enumerate() {
        if !(1..=100).contains(&d.len()) {
            return Err(ApiError::unprocessable(
                format!("devices[{i}]"),
                "must be a client id",
            ));
        }
    }
    // Listed once each, in the order GET lists them (a device named twice would upsert the same row twice).
    let mut devices = body.devices.clone();
    devices.sort();
    devices.dedup();
    let mut client = state.db.get().await?;
    let tx = client.transaction().await?;
    if let Some(existing) = venues::load(&tx, &id).await? {
        // A client cannot move a venue out of its scope, nor edit one outside it.
        in_scope(&official, &existing.region)?;
    }
    // Nor take a device from a venue outside its scope: the device's gate would then report its visitors to this
    // client's officials.
    for (device, region) in db::venues::bound_elsewhere(&tx, &devices, &id).await? {
        if !RegionCode::parse(&region).is_ok_and(|r| official.covers(r)) {
            let i = body.devices.iter().position(|d| *d == device).unwrap_or(0);
            return Err(ApiError::forbidden(format!(
                "devices[{i}] is bound to a venue outside this client's region scope"
            )));
        }
    }
    let stored = db::venues::StoredVenue {
        id: &id,
        name,
        region: &body.region,
        policy: serde_json::to_value(&body.policy).map_err(anyhow::Error::from)?,
        updated_by: &official.client_id,
    };
    db::venues::store(&tx, &stored, &devices).await?;
    tx.commit().await?;
    state.venues.forget();
    tracing::info!(venue = %id, devices = devices.len(), "venue stored");
    // What was just stored, as GET answers it, without reading it back.
    Ok(HttpResponse::Ok().json(VenueView {
        venue_code: venue_code(&state.index, &id),
        id,
        name: name.to_owned(),
        region: body.region,
        policy: body.policy,
        devices,
    }))
}

#[utoipa::path(get, path = "/v1/venues/{id}", tag = "venues", security(("bearer" = ["admin"])),
    params(("id" = String, Path)),
    responses((status = 200, description = "The venue", body = VenueView), (status = 404, description = "No such venue")))]
pub async fn get(
    state: web::Data<AppState>,
    official: Official<Admin>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let venue = venues::load(&state.db.get().await?, &path)
        .await?
        .ok_or(ApiError::NotFound { what: "venue" })?;
    in_scope(&official, &venue.region)?;
    Ok(HttpResponse::Ok().json(view(&state, venue).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CodeQuery {
    /// `svg` (default) or `payload` (the code's text as JSON).
    pub format: Option<String>,
}

/// The venue's QR code, to print at its door: citizens scan it to check in.
#[utoipa::path(get, path = "/v1/venues/{id}/code", tag = "venues", params(("id" = String, Path), CodeQuery), security(("bearer" = ["admin"])),
    responses((status = 200, description = "SVG, or {code} as JSON"), (status = 404, description = "No such venue")))]
pub async fn code(
    state: web::Data<AppState>,
    official: Official<Admin>,
    path: web::Path<String>,
    query: web::Query<CodeQuery>,
) -> Result<HttpResponse, ApiError> {
    let venue = venues::load(&state.db.get().await?, &path)
        .await?
        .ok_or(ApiError::NotFound { what: "venue" })?;
    in_scope(&official, &venue.region)?;
    let text = venue_code(&state.index, &venue.id);
    match query.format.as_deref().unwrap_or("svg") {
        "payload" => Ok(HttpResponse::Ok()
            .json(serde_json::json!({"code": text, "venue": venue.id, "name": venue.name}))),
        "svg" => {
            let qr =
                qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M)
                    .map_err(anyhow::Error::from)?;
            let svg = qr
                .render::<qrcode::render::svg::Color<'_>>()
                .min_dimensions(256, 256)
                .quiet_zone(true)
                .build();
            Ok(HttpResponse::Ok().content_type("image/svg+xml").body(svg))
        }
        _ => Err(ApiError::unprocessable("format", "must be svg or payload")),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VisitsQuery {
    /// From this time (inclusive).
    pub from: DateTime<Utc>,
    /// To this time (exclusive); at most 31 days after `from`.
    pub to: DateTime<Utc>,
    /// Why the records are read (case number, order); audited.
    pub reason: String,
    /// 1 to 1000 (default 200).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VisitPage {
    pub visits: Vec<VisitRecord>,
    pub next_cursor: Option<String>,
}

/// Who was at the venue between two times (contact tracing). Every page read is audited.
#[utoipa::path(get, path = "/v1/venues/{id}/visits", tag = "venues", params(("id" = String, Path), VisitsQuery), security(("bearer" = ["trace:read"])),
    responses(
        (status = 200, description = "Scans and check-ins, oldest first", body = VisitPage),
        (status = 403, description = "Lacks trace:read or the venue's region", body = hc_platform::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such venue", body = hc_platform::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "A parameter is invalid", body = hc_platform::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn visits(
    state: web::Data<AppState>,
    official: Official<TraceRead>,
    path: web::Path<String>,
    query: web::Query<VisitsQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = hc_platform::http::page_limit(query.limit, 200, 1000)?;
    if query.to <= query.from || query.to - query.from > chrono::Duration::days(31) {
        return Err(ApiError::unprocessable(
            "to",
            "must be after from, by at most 31 days",
        ));
    }
    let reason = hc_platform::http::text("reason", &query.reason, 3..=500)?;
    let (after_at, after_id) = cursor::parse(query.cursor.as_deref())?;
    let client = state.db.get().await?;
    let venue = venues::load(&client, &path)
        .await?
        .ok_or(ApiError::NotFound { what: "venue" })?;
    in_scope(&official, &venue.region)?;
    let visits: Vec<VisitRecord> = db::scans::at_venue(
        &client,
        &venue.id,
        (query.from, query.to),
        (after_at, after_id),
        limit + 1,
    )
    .await?;
    let (visits, next_cursor) =
        hc_platform::http::page(visits, limit, |v| cursor::format(v.at, v.id));
    audit::Entry {
        actor: &official.client_id,
        action: "trace.venue_visits",
        subject: None,
        reason: Some(reason),
        outcome: &format!(
            "venue {} {}..{}: {} records",
            venue.id,
            query.from,
            query.to,
            visits.len()
        ),
    }
    .record(&client)
    .await?;
    Ok(HttpResponse::Ok().json(VisitPage {
        visits,
        next_cursor,
    }))
}
