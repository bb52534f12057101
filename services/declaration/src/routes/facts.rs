use actix_web::web;
use chrono::{DateTime, NaiveDate, Utc};
use hc_platform::ApiError;
use hc_platform::auth::Citizen;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::state::AppState;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NatResultView {
    pub sample_time: DateTime<Utc>,
    pub positive: bool,
    pub lab: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CaseStatusView {
    pub status: String,
    pub since: NaiveDate,
    pub until: Option<NaiveDate>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VisitView {
    pub region: String,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub source: String,
}

#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct MyFacts {
    /// False until the identity service's registration event has linked this person to their facts.
    pub linked: bool,
    /// The 20 most recent test results.
    pub nat_results: Vec<NatResultView>,
    pub case_status: Vec<CaseStatusView>,
    /// The 50 most recent visits.
    pub visits: Vec<VisitView>,
}

/// The official facts about the signed-in citizen, including those imported before they registered.
#[utoipa::path(get, path = "/v1/facts/me", tag = "facts", security(("bearer" = [])),
    responses(
        (status = 200, description = "The citizen's facts", body = MyFacts),
        (status = 401, description = "No valid citizen token", body = hc_platform::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn mine(
    state: web::Data<AppState>,
    Citizen(person): Citizen,
) -> Result<web::Json<MyFacts>, ApiError> {
    let client = state.db.get().await?;
    let Some(link) = client
        .query_opt(
            "SELECT id_index FROM person_links WHERE person_id = $1",
            &[&person.0],
        )
        .await?
    else {
        return Ok(web::Json(MyFacts::default()));
    };
    let index: Vec<u8> = link.get(0);
    let nat = client
        .query("SELECT sample_time, positive, lab FROM nat_results WHERE id_index = $1 ORDER BY sample_time DESC LIMIT 20", &[&index])
        .await?;
    let cases = client
        .query(
            "SELECT status, since, until FROM case_status WHERE id_index = $1 ORDER BY since DESC",
            &[&index],
        )
        .await?;
    let visits = client
        .query(
            "SELECT region, first_seen, last_seen, source FROM visits WHERE id_index = $1 ORDER BY first_seen DESC LIMIT 50",
            &[&index],
        )
        .await?;
    Ok(web::Json(MyFacts {
        linked: true,
        nat_results: nat
            .iter()
            .map(|r| NatResultView {
                sample_time: r.get(0),
                positive: r.get(1),
                lab: r.get(2),
            })
            .collect(),
        case_status: cases
            .iter()
            .map(|r| CaseStatusView {
                status: r.get(0),
                since: r.get(1),
                until: r.get(2),
            })
            .collect(),
        visits: visits
            .iter()
            .map(|r| VisitView {
                region: r.get(0),
                first_seen: r.get(1),
                last_seen: r.get(2),
                source: r.get(3),
            })
            .collect(),
    }))
}
