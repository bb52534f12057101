use actix_web::{HttpRequest, HttpResponse, web};
use aws_lc_rs::digest::{SHA256, digest};
use hc_domain::{RegionCode, Scope};
use hc_platform::auth::{Admin, Official};
use hc_platform::events::AuthRevoked;
use hc_platform::http::Json;
use hc_platform::{ApiError, audit};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::invalid;
pub use crate::db::clients::ClientView;
use crate::db::clients::{self, NewClient};
use crate::state::AppState;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NewClientRequest {
    #[schema(example = "Guangzhou CDC lab import")]
    pub name: String,
    #[schema(example = json!(["import:nat"]))]
    pub scopes: Vec<String>,
    /// GB/T 2260 code the client is limited to; absent for a nationwide client.
    #[schema(example = "440100")]
    pub region: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ClientCreated {
    #[serde(flatten)]
    pub client: ClientView,
    /// Shown once, at creation. A replay with the same Idempotency-Key returns the client without it.
    pub client_secret: Option<String>,
}

/// Create an official API client (scope `admin`). `Idempotency-Key` makes a retry return the same client.
#[utoipa::path(post, path = "/v1/clients", tag = "clients", request_body = NewClientRequest, security(("bearer" = ["admin"])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key return the client created first")),
    responses(
        (status = 201, description = "Created; the secret is shown only now", body = ClientCreated),
        (status = 200, description = "Replay of an earlier request with the same Idempotency-Key", body = ClientCreated),
        (status = 401, description = "No valid token", body = hc_platform::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin, or a region or scope outside the creator's own", body = hc_platform::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid field", body = hc_platform::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn create(
    state: web::Data<AppState>,
    admin: Official<Admin>,
    req: HttpRequest,
    Json(body): Json<NewClientRequest>,
) -> Result<HttpResponse, ApiError> {
    let name = hc_platform::http::text("name", &body.name, 1..=100)?;
    if body.scopes.is_empty() {
        return Err(ApiError::unprocessable(
            "scopes",
            "at least one scope is required",
        ));
    }
    for (i, scope) in body.scopes.iter().enumerate() {
        let Some(scope) = scope.parse::<Scope>().ok().filter(|s| s.is_official()) else {
            return Err(ApiError::unprocessable(
                format!("scopes[{i}]"),
                format!("unknown scope {scope:?}"),
            ));
        };
        // A client is created within its creator's powers, never beyond them.
        if !admin.scopes().contains(scope) {
            return Err(ApiError::forbidden(format!(
                "scopes[{i}]: the scope {scope} is not the creator's own"
            )));
        }
    }
    let region = body
        .region
        .as_deref()
        .map(RegionCode::parse)
        .transpose()
        .map_err(invalid("region"))?;
    match (admin.region, region) {
        (Some(own), None) => {
            return Err(ApiError::forbidden(format!(
                "region: a client of an admin limited to {own} is limited to a region inside it"
            )));
        }
        (_, Some(region)) => admin.require_region(region)?,
        (None, None) => {}
    }
    let idempotency_key = hc_platform::http::idempotency_key(&req)?;

    let secret = hc_platform::privacy::random_token(32)?;
    let mut scopes = body.scopes.clone();
    scopes.sort();
    scopes.dedup();
    let region_text = region.map(|r| r.to_string());
    let mut db = state.db.get().await?;
    let tx = db.transaction().await?;
    let (row, created) = clients::insert(
        &tx,
        &NewClient {
            id: Uuid::new_v4(),
            name,
            secret_hash: digest(&SHA256, secret.as_bytes()).as_ref(),
            scopes: &scopes,
            region: region_text.as_deref(),
            created_by: &admin.client_id,
            idempotency_key: idempotency_key.as_deref(),
        },
    )
    .await?;
    if created {
        // Who handed out which powers: the audit log has it beside every read of personal data.
        let what = format!(
            "client {} ({}) in {}",
            row.client_id,
            scopes.join(" "),
            region_text.as_deref().unwrap_or("all regions")
        );
        audit::Entry {
            actor: &admin.client_id,
            action: "client.create",
            subject: None,
            reason: Some(&what),
            outcome: "created",
        }
        .record(&tx)
        .await?;
    }
    tx.commit().await?;
    let body = ClientCreated {
        client: row,
        client_secret: created.then_some(secret),
    };
    Ok(if created {
        HttpResponse::Created().json(body)
    } else {
        HttpResponse::Ok().json(body)
    })
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ClientPage {
    pub items: Vec<ClientView>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// List API clients, a page at a time (scope `admin`).
#[utoipa::path(get, path = "/v1/clients", tag = "clients", security(("bearer" = ["admin"])), params(PageQuery),
    responses(
        (status = 200, description = "One page of clients", body = ClientPage),
        (status = 403, description = "Not an admin", body = hc_platform::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid limit or cursor", body = hc_platform::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(
    state: web::Data<AppState>,
    admin: Official<Admin>,
    query: web::Query<PageQuery>,
) -> Result<web::Json<ClientPage>, ApiError> {
    let limit = hc_platform::http::page_limit(query.limit, 50, 200)?;
    let after = query
        .cursor
        .as_deref()
        .map(|c| c.parse::<Uuid>())
        .transpose()
        .map_err(|_| ApiError::unprocessable("cursor", "is not a cursor this endpoint returned"))?;
    let db = state.db.get().await?;
    let rows = clients::page(&db, admin.region.map(RegionCode::span), after, limit + 1).await?;
    let (items, next_cursor) = hc_platform::http::page(rows, limit, |c| c.client_id.to_string());
    Ok(web::Json(ClientPage { items, next_cursor }))
}

/// Revoke an API client (scope `admin`): it can no longer get tokens, and every service refuses the tokens it
/// holds within a second. A client outside the admin's region answers 404, as one that does not exist.
#[utoipa::path(delete, path = "/v1/clients/{id}", tag = "clients", security(("bearer" = ["admin"])),
    params(("id" = Uuid, Path, description = "client_id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "No such client", body = hc_platform::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn revoke(
    state: web::Data<AppState>,
    admin: Official<Admin>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id: Uuid = path
        .parse()
        .map_err(|_| ApiError::unprocessable("id", "is not a client id"))?;
    let mut db = state.db.get().await?;
    let tx = db.transaction().await?;
    // A client outside the admin's region is, to this admin, no client at all.
    let inside = clients::by_id(&tx, id).await?;
    let inside = inside.is_some_and(|(c, _)| admin.covers_stored(c.region.as_deref()));
    if !inside || !clients::revoke(&tx, id).await? {
        return Err(ApiError::NotFound { what: "client" });
    }
    // The tokens it holds stop working within a poll of every service (hc_platform::revocation), not at expiry.
    let revoked = AuthRevoked::from_now(id);
    hc_platform::outbox::enqueue(&tx, AuthRevoked::STREAM, &revoked.encode()).await?;
    let what = format!("client {id}");
    audit::Entry {
        actor: &admin.client_id,
        action: "client.revoke",
        subject: None,
        reason: Some(&what),
        outcome: "revoked",
    }
    .record(&tx)
    .await?;
    tx.commit().await?;
    tracing::info!(client = %id, by = %admin.client_id, "API client revoked");
    Ok(HttpResponse::NoContent().finish())
}
