//! Reading statuses: the citizen's own and an official's audited look-up by ID number (an employer's colours of the
//! staff it listed are in `staff`).

use actix_web::web;
use hc_domain::{IdNumber, RegionCode};
use hc_platform::ApiError;
use hc_platform::auth::{Citizen, Official, PersonRead};
use hc_platform::http::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::audit::Entry;
use crate::db;
use crate::state::AppState;
use crate::status::{self, StatusView};

/// The status from Redis, or from PostgreSQL when Redis does not have it (or is down). In the naive profile
/// (`recompute_on_read`) the colour is computed afresh from the facts in PostgreSQL on every read, as the systems
/// that fell over did.
async fn current(state: &AppState, person: Uuid) -> Result<Option<StatusView>, ApiError> {
    if state.settings.recompute_on_read {
        let index = db::subjects::index_of(&state.db.get().await?, person).await?;
        if let Some(index) = index {
            state.recolourer.recolour(vec![index]).await?;
        }
        let client = state.db.get().await?;
        return Ok(status::read(&client, person).await?);
    }
    match status::read_cached(&state.store, person).await {
        Ok(Some(s)) => return Ok(Some(s)),
        Ok(None) => {}
        Err(err) => {
            tracing::warn!(error = %err, "redis unavailable for a status read; reading PostgreSQL")
        }
    }
    let client = state.db.get().await?;
    Ok(status::read(&client, person).await?)
}

/// The signed-in citizen's colour, its reasons and what to do to turn green.
#[utoipa::path(get, path = "/v1/status/me", tag = "status", security(("bearer" = [])),
    responses(
        (status = 200, description = "The citizen's status", body = StatusView),
        (status = 401, description = "No valid citizen token", body = hc_platform::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "Not scored yet (registration still propagating)", body = hc_platform::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn mine(
    state: web::Data<AppState>,
    Citizen(person): Citizen,
) -> Result<web::Json<StatusView>, ApiError> {
    current(&state, person.0)
        .await?
        .map(web::Json)
        .ok_or(ApiError::NotFound { what: "status" })
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct LookupRequest {
    #[schema(example = "440106198001010016")]
    pub id_number: String,
    /// Why the official reads it: kept in the audit log.
    pub reason: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LookupAnswer {
    pub person_id: Uuid,
    pub home_region: String,
    pub status: StatusView,
}

/// An official reads a person's status by ID number (in the body, so it never lands in an access log). The read is
/// audited before the answer goes out; the person must live inside the client's region scope.
#[utoipa::path(post, path = "/v1/status/lookup", tag = "status", request_body = LookupRequest, security(("bearer" = ["person:read"])),
    responses(
        (status = 200, description = "The status", body = LookupAnswer),
        (status = 403, description = "Lacks person:read", body = hc_platform::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such person, or one outside the client's region (the same answer, so that it does not tell that they exist)", body = hc_platform::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is invalid", body = hc_platform::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn lookup(
    state: web::Data<AppState>,
    official: Official<PersonRead>,
    Json(body): Json<LookupRequest>,
) -> Result<web::Json<LookupAnswer>, ApiError> {
    let reason = hc_platform::http::text("reason", &body.reason, 4..=500)?;
    let today = hc_domain::china_time::day_of(chrono::Utc::now());
    let id = IdNumber::parse(&body.id_number, today)
        .map_err(|e| ApiError::unprocessable("id_number", e.reason))?;
    let index = state.index.id_number(&id);
    let client = state.db.get().await?;
    let subject = db::subjects::by_index(&client, &index).await?;
    let inside = subject
        .as_ref()
        .is_some_and(|(_, home)| RegionCode::parse(home).is_ok_and(|r| official.covers(r)));
    let outcome = match (&subject, inside) {
        (None, _) => "not_found",
        (Some(_), false) => "denied_region",
        (Some(_), true) => "read",
    };
    // The audit row is written before anything is answered; if it cannot be written, nothing is shown.
    Entry {
        actor: &official.client_id,
        action: "status.lookup",
        subject: subject.as_ref().map(|(person, _)| *person),
        reason: Some(reason),
        outcome,
    }
    .record(&client)
    .await?;
    // A person outside the client's region is, to this client, nobody: a 403 would say that they exist.
    let Some((person, home)) = subject.filter(|_| inside) else {
        return Err(ApiError::NotFound { what: "person" });
    };
    drop(client);
    let status = current(&state, person)
        .await?
        .ok_or(ApiError::NotFound { what: "status" })?;
    Ok(web::Json(LookupAnswer {
        person_id: person,
        home_region: home,
        status,
    }))
}
