//! `POST /v1/facts/corrections`: an official's explicit change to a fact already stored. An import never changes a
//! stored fact (a row sent again is a duplicate), so a case's end date or a test's result changes only here: within
//! the official's region, with a reason, recorded before and after, and announced to scoring as a correction.

use actix_web::web;
use chrono::{DateTime, NaiveDate, Utc};
use hc_domain::{CaseStatus, IdNumber};
use hc_platform::ApiError;
use hc_platform::auth::{AnyImport, Official};
use hc_platform::events::{CaseFact, FactsImported, ImportedFacts, NatResultFact};
use hc_platform::http::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::db::corrections::{self, NewCorrection};
use crate::imports::{Kind, nat_result};
use crate::state::AppState;

/// What to correct, named by the fact's natural key, and its new value.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum CorrectionRequest {
    /// A case's end date (scope `import:cases`): `until` replaces the stored one (null: open).
    Cases {
        #[schema(example = "44010619850315002X")]
        id_number: String,
        #[schema(example = "close_contact")]
        status: String,
        since: NaiveDate,
        until: Option<NaiveDate>,
        /// Why (3 to 500 characters), kept with the correction.
        reason: String,
    },
    /// A test's result (scope `import:nat`).
    NatResults {
        id_number: String,
        sample_time: DateTime<Utc>,
        lab: String,
        /// `positive` or `negative`.
        result: String,
        reason: String,
    },
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CorrectionView {
    /// Whether the fact changed (false: it already held this value, as after a retry).
    pub changed: bool,
    /// The recorded correction, when it changed.
    pub correction_id: Option<i64>,
}

/// Correct a stored case's end date or test result. The fact must have arisen within the client's region; a fact
/// outside it is not found, like one that does not exist. The change, its reason and the fact before and after are
/// recorded, and scoring replaces its copy (`facts.imported` with `correction: true`). Sending the same correction
/// again changes nothing.
#[utoipa::path(post, path = "/v1/facts/corrections", tag = "imports", security(("bearer" = ["import:nat", "import:cases"])),
    request_body = CorrectionRequest,
    responses(
        (status = 200, description = "Corrected, or already as asked", body = CorrectionView),
        (status = 401, description = "No valid token", body = hc_platform::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "The client lacks the kind's scope", body = hc_platform::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such fact within the client's region", body = hc_platform::error::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = hc_platform::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is invalid; `field` names it", body = hc_platform::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn correct(
    state: web::Data<AppState>,
    official: Official<AnyImport>,
    Json(body): Json<CorrectionRequest>,
) -> Result<web::Json<CorrectionView>, ApiError> {
    let (kind, id_number, reason) = match &body {
        CorrectionRequest::Cases {
            id_number, reason, ..
        } => (Kind::Cases, id_number, reason),
        CorrectionRequest::NatResults {
            id_number, reason, ..
        } => (Kind::NatResults, id_number, reason),
    };
    official.require(kind.scope())?;
    let reason = reason.trim();
    if !(3..=500).contains(&reason.chars().count()) {
        return Err(ApiError::unprocessable(
            "reason",
            "a reason of 3 to 500 characters is required",
        ));
    }
    let id = IdNumber::parse(id_number, hc_domain::china_time::day_of(Utc::now()))
        .map_err(|e| ApiError::unprocessable("id_number", e.reason))?;
    let index = state.index.id_number(&id);

    let mut client = state.db.get().await?;
    let tx = client.transaction().await?;
    let not_found = || ApiError::NotFound { what: "fact" };
    let unchanged = || {
        web::Json(CorrectionView {
            changed: false,
            correction_id: None,
        })
    };
    let (before, after, fact) = match &body {
        CorrectionRequest::Cases {
            status,
            since,
            until,
            ..
        } => {
            let status: CaseStatus = status.parse().map_err(|e: hc_domain::InvalidValue| {
                ApiError::unprocessable("status", e.reason)
            })?;
            if until.is_some_and(|u| u < *since) {
                return Err(ApiError::unprocessable("until", "is before since"));
            }
            let status = status.as_str();
            let stored = corrections::lock_case(&tx, &index, status, *since)
                .await?
                .filter(|s| official.covers_stored(s.region.as_deref()))
                .ok_or_else(not_found)?;
            if stored.value == *until {
                return Ok(unchanged());
            }
            corrections::set_case_until(&tx, &index, status, *since, *until).await?;
            let fact = ImportedFacts::Cases(vec![CaseFact {
                status: status.to_owned(),
                since: *since,
                until: *until,
                region: None,
            }]);
            (
                json!({"until": stored.value}),
                json!({"until": until}),
                fact,
            )
        }
        CorrectionRequest::NatResults {
            sample_time,
            lab,
            result,
            ..
        } => {
            let positive = nat_result(result).map_err(|e| ApiError::unprocessable("result", e))?;
            let stored = corrections::lock_nat(&tx, &index, *sample_time, lab)
                .await?
                .filter(|s| official.covers_stored(s.region.as_deref()))
                .ok_or_else(not_found)?;
            if stored.value == positive {
                return Ok(unchanged());
            }
            corrections::set_nat_result(&tx, &index, *sample_time, lab, positive).await?;
            let fact = ImportedFacts::NatResults(vec![NatResultFact {
                sample_time: *sample_time,
                positive,
                lab: lab.clone(),
            }]);
            (
                json!({"positive": stored.value}),
                json!({"positive": positive}),
                fact,
            )
        }
    };
    let correction_id = corrections::record(
        &tx,
        &NewCorrection {
            kind: kind.as_str(),
            index: &index,
            before,
            after,
            client_id: &official.client_id,
            reason,
        },
    )
    .await?;
    let event = FactsImported {
        client_id: official.client_id.clone(),
        batch_id: format!("correction-{correction_id}"),
        through_row: None,
        people: vec![index],
        facts: fact,
        correction: true,
    };
    hc_platform::outbox::enqueue(&tx, FactsImported::STREAM, &event.encode()).await?;
    tx.commit().await?;
    tracing::info!(
        correction = correction_id,
        kind = kind.as_str(),
        "fact corrected"
    );
    Ok(web::Json(CorrectionView {
        changed: true,
        correction_id: Some(correction_id),
    }))
}
