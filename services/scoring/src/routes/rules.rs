//! Rule sets: upload a version, read any version, and dry-run a draft over the population.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, web};
use chrono::Utc;
use hc_platform::ApiError;
use hc_platform::auth::{AnyScope, Official, RulesWrite};
use hc_platform::http::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

pub use crate::db::rule_sets::StoredRuleSet;
use crate::db::{rule_sets, subjects};
use crate::facts::document;
use crate::loader::lock_and_load;
use crate::rules::{self, RuleError, RuleSetDoc, compile};
use crate::state::AppState;

fn region_of(raw: &str) -> Result<String, ApiError> {
    rules::parse_region(raw).map_err(|reason| ApiError::unprocessable("region", reason))
}

fn rule_error(e: RuleError) -> ApiError {
    ApiError::unprocessable(
        if e.pointer.is_empty() {
            "body".into()
        } else {
            e.pointer
        },
        e.message,
    )
}

/// A client may change the rules of regions inside its own region scope; the national set needs a nationwide
/// client.
fn check_scope<S: hc_platform::auth::Needs>(
    official: &Official<S>,
    region: &str,
) -> Result<(), ApiError> {
    let allowed = match (official.region, rules::parse_region(region)) {
        (None, _) => true,
        (Some(own), Ok(r)) if r != rules::NATIONAL => hc_domain::RegionCode::parse(&r)
            .map(|r| own.contains(r))
            .unwrap_or(false),
        _ => false,
    };
    if allowed {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "region {region} is outside this client's region scope"
        )))
    }
}

/// Checks a draft for `region` in its place: merged with what it inherits, and under every region inside it that
/// has its own set (a draft must not break what inherits from it).
async fn check_draft(state: &AppState, region: &str, draft: &RuleSetDoc) -> Result<(), ApiError> {
    // Alone first, so that an error points into the document as sent.
    compile(draft, "draft".into()).map_err(rule_error)?;
    let snapshot = state.recolourer.snapshot().await?;
    let drafted = snapshot.book.with_draft(region, draft);
    drafted.for_home(region).map_err(rule_error)?;
    let (lo, hi) = crate::recolour::span(region);
    for inner in (drafted.sets.keys()).filter(|r| *r != region && **r >= lo && **r <= hi) {
        drafted.for_home(inner).map_err(|e| {
            ApiError::unprocessable(
                "body",
                format!("the rule set of {inner}, which inherits from this one, would break: {e}"),
            )
        })?;
    }
    Ok(())
}

/// Upload a new version of a region's rule set. It is checked (JSON syntax with line and column, structure with the
/// field's path, JsonLogic, facts it reads, colours it can reach) in its place in the inheritance chain, stored, and
/// applied from `effective_from` (default now): everyone it governs is recoloured in the background.
#[utoipa::path(put, path = "/v1/rules/{region}", tag = "rules", request_body = RuleSetDoc, security(("bearer" = ["rules:write"])),
    params(("region" = String, Path, description = "000000 for the national baseline, or a GB/T 2260 code")),
    responses(
        (status = 201, description = "Stored", body = StoredRuleSet),
        (status = 400, description = "Malformed JSON (with line and column)", body = hc_platform::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Lacks rules:write or the region", body = hc_platform::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid; `field` is the JSON pointer of what is wrong", body = hc_platform::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn put(
    state: web::Data<AppState>,
    official: Official<RulesWrite>,
    path: web::Path<String>,
    Json(doc): Json<RuleSetDoc>,
) -> Result<HttpResponse, ApiError> {
    let region = region_of(&path)?;
    check_scope(&official, &region)?;
    check_draft(&state, &region, &doc).await?;
    let effective_from = doc.effective_from.unwrap_or_else(Utc::now);
    let mut client = state.db.get().await?;
    let tx = client.transaction().await?;
    let document = serde_json::to_value(&doc).map_err(anyhow::Error::from)?;
    let version =
        rule_sets::store_next(&tx, &region, &document, effective_from, &official.client_id).await?;
    tx.commit().await?;
    tracing::info!(region = %region, version, client = %official.client_id, "rule set stored");
    if effective_from <= Utc::now() {
        let recolourer = state.recolourer.clone();
        tokio::spawn(async move {
            if let Err(err) = crate::scheduler::apply_due_rules(&recolourer).await {
                tracing::warn!(error = %err, "applying a rule set failed; the scheduler retries");
            }
        });
    }
    // Just stored: not reading it back is our fault, not a missing resource.
    let stored = read(&state, &region, Some(version)).await?.ok_or_else(|| {
        ApiError::Internal(anyhow::anyhow!(
            "rule set {region}@{version} did not read back"
        ))
    })?;
    Ok(HttpResponse::Created().json(stored))
}

async fn read(
    state: &AppState,
    region: &str,
    version: Option<i32>,
) -> Result<Option<StoredRuleSet>, ApiError> {
    Ok(rule_sets::read(&state.db.get().await?, region, version).await?)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VersionQuery {
    /// A version number (default: the version in force).
    pub version: Option<i32>,
}

/// Read a region's rule set: the version in force, or any earlier or later one.
#[utoipa::path(get, path = "/v1/rules/{region}", tag = "rules", security(("bearer" = [])),
    params(("region" = String, Path, description = "000000 or a GB/T 2260 code"), VersionQuery),
    responses(
        (status = 200, description = "The version", body = StoredRuleSet),
        (status = 404, description = "No such region set or version", body = hc_platform::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn get(
    state: web::Data<AppState>,
    _official: Official<AnyScope>,
    path: web::Path<String>,
    query: web::Query<VersionQuery>,
) -> Result<web::Json<StoredRuleSet>, ApiError> {
    let region = region_of(&path)?;
    read(&state, &region, query.version)
        .await?
        .map(web::Json)
        .ok_or(ApiError::NotFound { what: "rule set" })
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DryRunQuery {
    /// Evaluate at most this many people of the region, chosen at random (default: everyone, up to 1,000,000).
    pub sample: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Transition {
    pub from: String,
    pub to: String,
    pub people: u64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DryRun {
    pub region: String,
    pub evaluated: u64,
    pub unchanged: u64,
    /// People who would change colour, by from -> to.
    pub changes: Vec<Transition>,
}

/// Evaluate a draft over the people living in the region (or a sample) against the rules in force, without
/// storing anything: how many would change colour, from what to what.
#[utoipa::path(post, path = "/v1/rules/{region}/dry-run", tag = "rules", request_body = RuleSetDoc, security(("bearer" = ["rules:write"])),
    params(("region" = String, Path, description = "000000 or a GB/T 2260 code"), DryRunQuery),
    responses(
        (status = 200, description = "What would change", body = DryRun),
        (status = 422, description = "The draft is invalid", body = hc_platform::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn dry_run(
    state: web::Data<AppState>,
    official: Official<RulesWrite>,
    path: web::Path<String>,
    query: web::Query<DryRunQuery>,
    Json(draft): Json<RuleSetDoc>,
) -> Result<web::Json<DryRun>, ApiError> {
    let region = region_of(&path)?;
    check_scope(&official, &region)?;
    check_draft(&state, &region, &draft).await?;
    let sample = query.sample.unwrap_or(1_000_000);
    if !(1..=1_000_000).contains(&sample) {
        return Err(ApiError::unprocessable("sample", "must be 1 to 1000000"));
    }
    let (lo, hi) = crate::recolour::span(&region);
    let client = state.db.get().await?;
    let indexes = subjects::sample_living_in(&client, (&lo, &hi), sample).await?;
    let snapshot = state.recolourer.snapshot().await?;
    let drafted = std::sync::Arc::new(snapshot.book.with_draft(&region, &draft));
    let now = Utc::now();
    let since = now - chrono::Duration::days(state.settings.lookback_days);
    let mut transitions: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut evaluated = 0u64;
    for chunk in indexes.chunks(state.settings.recolour_chunk) {
        let (loaded, _) = lock_and_load(&client, chunk, since, false).await?;
        let (snapshot, drafted) = (snapshot.clone(), drafted.clone());
        let pairs = web::block(move || -> Result<Vec<(String, String)>, RuleError> {
            let mut evaluator = rules::Evaluator::default();
            let mut out = Vec::with_capacity(loaded.len());
            for l in &loaded {
                let (subject, raw) = (&l.subject, &l.facts);
                let current = snapshot.book.for_home(&subject.home_region)?;
                let proposed = drafted.for_home(&subject.home_region)?;
                let facts = document(raw, &subject.home_region, now, &snapshot.risk);
                let before = evaluator.evaluate(&current, &facts).colour;
                let after = evaluator.evaluate(&proposed, &facts).colour;
                out.push((before.to_string(), after.to_string()));
            }
            Ok(out)
        })
        .await
        .map_err(|e| anyhow::anyhow!("dry run worker: {e}"))?
        .map_err(rule_error)?;
        for (from, to) in pairs {
            evaluated += 1;
            *transitions.entry((from, to)).or_default() += 1;
        }
    }
    let unchanged = transitions
        .iter()
        .filter(|((f, t), _)| f == t)
        .map(|(_, n)| n)
        .sum();
    let changes = transitions
        .into_iter()
        .filter(|((f, t), _)| f != t)
        .map(|((from, to), people)| Transition { from, to, people })
        .collect();
    Ok(web::Json(DryRun {
        region,
        evaluated,
        unchanged,
        changes,
    }))
}
