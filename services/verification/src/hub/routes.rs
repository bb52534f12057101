//! The hub's API: a region's upload (authenticated by its root key's signature, not by a token), the national list
//! and the national root key (public).

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use hc_domain::Colour;
use hc_platform::ApiError;
use hc_platform::http::Json;
use hc_token::{SignedTrustList, TrustList, TrustedIssuer};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use super::{HubState, db};
use crate::routes::trust::RootKey;
use crate::trust::colour_table;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/v1/hub")
            .route("/list", web::get().to(list))
            .route("/root", web::get().to(root))
            .route("/regions/{region}/list", web::put().to(upload))
            .route(
                "/regions/{region}/exchange",
                web::post().to(super::exchange::exchange),
            ),
    );
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Health-code platform: national trust hub",
        description = "Regions upload their signed trust lists; the hub publishes one national list signed by the national root (docs/interop.md). A region's upload is authenticated by its registered root key's signature. Errors are application/problem+json (RFC 9457)."
    ),
    paths(list, root, upload, super::exchange::exchange),
    components(schemas(hc_platform::error::Problem))
)]
pub struct HubApi;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RegionView {
    pub region: String,
    pub sequence: u64,
    pub expires_at: DateTime<Utc>,
    /// The key ids the national list carries for the region from now on.
    pub keys: Vec<String>,
}

/// The region's own entry on its list, with its colour table made explicit (absent: the national colours as they
/// are). Other issuers on a region's list are not passed on: trust is not transitive.
fn own_entry(list: &TrustList, region: &str) -> Result<TrustedIssuer, ApiError> {
    let entry = list
        .issuers
        .iter()
        .find(|i| i.region == region)
        .ok_or_else(|| {
            ApiError::unprocessable(
                "list",
                format!("the list does not list {region}'s own keys"),
            )
        })?;
    if entry.keys.is_empty() {
        return Err(ApiError::unprocessable(
            "list",
            format!("the list has no keys for {region}"),
        ));
    }
    // A list without a table maps each colour to itself.
    let colours = match &entry.colours {
        None => [Colour::Green, Colour::Yellow, Colour::Orange, Colour::Red]
            .map(|c| (c, c))
            .into_iter()
            .collect(),
        Some(table) => {
            colour_table(|c| table.get(c).map(String::as_str)).map_err(|(field, why)| {
                ApiError::unprocessable(format!("list.colours.{field}"), why)
            })?
        }
    };
    let table = (colours.into_iter())
        .map(|(theirs, ours)| (theirs.to_string(), ours.to_string()))
        .collect();
    Ok(TrustedIssuer {
        region: region.to_owned(),
        keys: entry.keys.clone(),
        colours: Some(table),
    })
}

/// Every region's entry from the lists held, each list verified again against its region's root now (a list whose
/// root was taken out of the settings, or that no longer verifies, drops out).
async fn entries(state: &HubState) -> Result<Vec<TrustedIssuer>, ApiError> {
    let client = state.db.get().await?;
    let now = Utc::now().timestamp();
    let mut entries = Vec::new();
    for (region, signed) in db::current(&client).await? {
        let region = region.trim().to_owned();
        let Some(root) = state.roots.get(&region) else {
            tracing::warn!(
                region,
                "a stored region list has no registered root any more; left out"
            );
            continue;
        };
        let signed = SignedTrustList {
            format: hc_token::TRUST_LIST_FORMAT.into(),
            signed,
        };
        match signed
            .verify(root, now)
            .map_err(|e| e.to_string())
            .and_then(|list| own_entry(&list, &region).map_err(|e| e.to_string()))
        {
            Ok(entry) => entries.push(entry),
            Err(why) => tracing::warn!(
                region,
                why,
                "a stored region list no longer verifies; left out"
            ),
        }
    }
    Ok(entries)
}

/// The national trust list: every region's own keys and colour table, signed by the national root.
#[utoipa::path(get, path = "/v1/hub/list", tag = "hub",
    responses(
        (status = 200, description = "{format, signed}: base64url of a COSE_Sign1 over the JSON list (docs/token-format.md §9), signed by the national root; each issuer carries `colours`"),
        (status = 503, description = "PostgreSQL cannot be reached", body = hc_platform::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(state: web::Data<HubState>) -> Result<HttpResponse, ApiError> {
    let issuers = entries(&state).await?;
    let now = Utc::now().timestamp();
    let list = TrustList {
        signer: state.region.clone(),
        // Seconds: grows with every list signed here (a platform refuses an older one than it holds).
        sequence: u64::try_from(now).unwrap_or_default(),
        issued_at: now,
        expires_at: now + state.list_hours * 3600,
        issuers,
    };
    let signed = list.sign(&state.root).map_err(anyhow::Error::from)?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=30"))
        .json(signed))
}

/// The national root key's public half, which every platform pins (and compares with this, out of band).
#[utoipa::path(get, path = "/v1/hub/root", tag = "hub", responses((status = 200, body = RootKey)))]
pub async fn root(state: web::Data<HubState>) -> HttpResponse {
    crate::routes::trust::root_answer(state.root.verifying_key())
}

/// A region's upload of its own signed trust list (as its `GET /v1/trust/list` serves it). No token: the list must
/// be signed by the root key registered for the region (hub.region_roots). A key left out of a newer list is
/// withdrawn from the national list at once.
#[utoipa::path(put, path = "/v1/hub/regions/{region}/list", tag = "hub", request_body(content = Object, description = "{format, signed}: the region's signed trust list"),
    params(("region" = String, Path, description = "The uploading region's six-digit code")),
    responses(
        (status = 200, description = "Stored; the national list carries these keys from now on", body = RegionView),
        (status = 404, description = "No root key is registered for the region", body = hc_platform::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Older than the list held for the region", body = hc_platform::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "A list that does not verify against the region's root (with its reason), has no keys of its own, or maps a colour as milder", body = hc_platform::error::Problem, content_type = "application/problem+json"),
        (status = 503, description = "PostgreSQL cannot be reached; nothing was stored", body = hc_platform::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn upload(
    state: web::Data<HubState>,
    path: web::Path<String>,
    Json(signed): Json<SignedTrustList>,
) -> Result<HttpResponse, ApiError> {
    let region = path.into_inner();
    let root = state.roots.get(&region).ok_or_else(|| ApiError::NotFound {
        what: "a registered region",
    })?;
    let list = signed
        .verify(root, Utc::now().timestamp())
        .map_err(|e| ApiError::unprocessable("list", format!("{}: {e}", e.code())))?;
    let entry = own_entry(&list, &region)?;
    let sequence = i64::try_from(list.sequence)
        .map_err(|_| ApiError::unprocessable("list", "sequence is too large"))?;
    let expires_at = DateTime::from_timestamp(list.expires_at, 0)
        .ok_or_else(|| ApiError::unprocessable("list", "expires_at is out of range"))?;
    let client = state.db.get().await?;
    if !db::store(&client, &region, &signed.signed, sequence, expires_at).await? {
        return Err(ApiError::Conflict {
            field: Some("list".into()),
            detail: format!("the list held for {region} is newer than sequence {sequence}"),
        });
    }
    tracing::info!(
        region,
        sequence,
        keys = entry.keys.len(),
        "region trust list stored"
    );
    Ok(HttpResponse::Ok().json(RegionView {
        region,
        sequence: list.sequence,
        expires_at,
        keys: entry.keys.iter().map(|k| k.kid.clone()).collect(),
    }))
}
