//! The fact exchange: regions say who lives with them (by national blind index), send facts about people they do
//! not have, and fetch the facts about their own residents. Every message is signed by the region's exchange key
//! (hub.exchange_keys). The hub keeps no name, no ID number and no phone: an index, a region and a fact.

use actix_web::{HttpResponse, web};
use chrono::Utc;
use deadpool_postgres::GenericClient;
use hc_domain::RegionCode;
use hc_platform::ApiError;
use hc_platform::exchange::{
    Delivery, Envelope, Fact, Fetched, MAX_AGE_SECONDS, MAX_ENTRIES, Message,
};
use hc_platform::http::Json;
use hc_platform::privacy::{from_hex, to_hex};
use hc_token::SignedMessage;
use serde_json::json;

use super::HubState;

fn index(hex: &str, field: &str) -> Result<Vec<u8>, ApiError> {
    from_hex(hex)
        .filter(|i| i.len() == 32)
        .ok_or_else(|| ApiError::unprocessable(field, "is not a national index (64 hex digits)"))
}

/// A region's signed message to the exchange.
#[utoipa::path(post, path = "/v1/hub/regions/{region}/exchange", tag = "hub",
    request_body(content = Object, description = "{format: hc-signed/1, signed}: an Envelope {region, at, message} signed by the region's exchange key; message is {kind: residents, indexes} | {kind: facts, facts: [{index, fact}]} | {kind: fetch, after, limit}"),
    params(("region" = String, Path, description = "The sending region's six-digit code")),
    responses(
        (status = 200, description = "residents: {received} (a claim for an index another region holds is refused, unsaid); fetch: {facts: [{id, index, source, fact}]}, the oldest waiting after the acknowledged ones are deleted"),
        (status = 202, description = "facts: {accepted}, whatever became of them (the sender learns nothing of whom the hub knows)"),
        (status = 400, description = "Malformed JSON", body = hc_platform::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No exchange key is registered for the region", body = hc_platform::error::Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than 4 MiB", body = hc_platform::error::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not application/json", body = hc_platform::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "A message that does not verify against the region's key (with its reason), another region's envelope, older or newer than 300 s, more than 5,000 entries, an index that is not 64 hex digits, or a fact that fails an import's checks (case status, until before since, lab 1 to 100 characters) or arose outside the sending region", body = hc_platform::error::Problem, content_type = "application/problem+json"),
        (status = 503, description = "PostgreSQL cannot be reached; nothing was stored", body = hc_platform::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn exchange(
    state: web::Data<HubState>,
    path: web::Path<String>,
    Json(signed): Json<SignedMessage>,
) -> Result<HttpResponse, ApiError> {
    let region = path.into_inner();
    let key = state.exchange_keys.get(&region).ok_or(ApiError::NotFound {
        what: "a region with an exchange key",
    })?;
    let envelope: Envelope = signed
        .open(key)
        .map_err(|e| ApiError::unprocessable("signed", format!("{}: {e}", e.code())))?;
    if envelope.region != region {
        return Err(ApiError::unprocessable(
            "region",
            "is not the region the message is from",
        ));
    }
    if Utc::now().timestamp().abs_diff(envelope.at) > MAX_AGE_SECONDS.unsigned_abs() {
        return Err(ApiError::unprocessable(
            "at",
            format!("is more than {MAX_AGE_SECONDS} s from the hub's clock"),
        ));
    }
    let client = state.db.get().await?;
    match envelope.message {
        Message::Residents { indexes } => {
            at_most_entries("indexes", indexes.len())?;
            let indexes = indexes
                .iter()
                .enumerate()
                .map(|(i, hex)| index(hex, &format!("indexes[{i}]")))
                .collect::<Result<Vec<_>, _>>()?;
            let refused = claim_residents(&client, &region, &indexes, state.unrouted_days).await?;
            if refused > 0 {
                // An index another region holds: the first claim stands (a region cannot take over someone's facts
                // by claiming them). The claimant is not told which, or that any were.
                metrics::counter!("hub_resident_claims_refused_total", "region" => region.clone())
                    .increment(refused);
                tracing::warn!(
                    region,
                    refused,
                    "claims for residents of another region refused"
                );
            }
            Ok(HttpResponse::Ok().json(json!({"received": indexes.len()})))
        }
        Message::Facts { facts } => {
            at_most_entries("facts", facts.len())?;
            let sender = RegionCode::parse(&region)
                .map_err(|e| ApiError::unprocessable("region", e.reason))?;
            let mut indexes = Vec::with_capacity(facts.len());
            let mut bodies = Vec::with_capacity(facts.len());
            for (i, exchanged) in facts.into_iter().enumerate() {
                indexes.push(index(&exchanged.index, &format!("facts[{i}].index"))?);
                exchanged
                    .fact
                    .check()
                    .map_err(|why| ApiError::unprocessable(format!("facts[{i}].fact"), why))?;
                let fact = within(exchanged.fact, sender).map_err(|why| {
                    ApiError::unprocessable(format!("facts[{i}].fact.region"), why)
                })?;
                bodies.push(serde_json::to_value(&fact).map_err(anyhow::Error::from)?);
            }
            let routed = route(&client, &region, &indexes, &bodies, state.unrouted_days).await?;
            tracing::info!(
                region,
                received = indexes.len(),
                routed,
                "facts received for other regions"
            );
            Ok(HttpResponse::Accepted().json(json!({"accepted": indexes.len()})))
        }
        Message::Fetch { ack, limit } => {
            at_most_entries("ack", ack.len())?;
            let facts = fetch(&client, &region, &ack, limit.clamp(1, MAX_ENTRIES)).await?;
            Ok(HttpResponse::Ok().json(Fetched { facts }))
        }
    }
}

/// A region reports facts that arose within it: a case entry names a region inside the sender's, or takes the
/// sender's.
fn within(fact: Fact, sender: RegionCode) -> Result<Fact, String> {
    match fact {
        Fact::Cases(mut case) => {
            let region = match case.region.as_deref() {
                Some(r) => RegionCode::parse(r).map_err(|e| e.reason.to_string())?,
                None => sender,
            };
            if !sender.contains(region) {
                return Err("is outside the sending region".into());
            }
            case.region = Some(region.to_string());
            Ok(Fact::Cases(case))
        }
        nat @ Fact::NatResults(_) => Ok(nat),
    }
}

/// Claims the indexes for `region`, the first claim standing, and routes to it the facts kept for them; returns how
/// many were already another region's.
async fn claim_residents(
    client: &impl GenericClient,
    region: &str,
    indexes: &[Vec<u8>],
    unrouted_days: i32,
) -> Result<u64, tokio_postgres::Error> {
    let held = client
        .query_one(
            "SELECT count(*) FROM residents WHERE national_index = ANY($1) AND region <> $2",
            &[&indexes, &region],
        )
        .await?
        .get::<_, i64>(0);
    client
        .execute(
            "INSERT INTO residents (national_index, region) SELECT i, $2 FROM unnest($1::bytea[]) AS i
             ON CONFLICT (national_index) DO NOTHING",
            &[&indexes, &region],
        )
        .await?;
    client
        .execute(
            "WITH moved AS (
                 DELETE FROM unrouted u USING residents r
                 WHERE u.national_index = r.national_index AND r.region = $1 AND u.national_index = ANY($2)
                   AND u.source <> $1 AND u.received_at > now() - make_interval(days => $3)
                 RETURNING u.national_index, u.source, u.fact)
             INSERT INTO inbox (home, national_index, source, fact) SELECT $1, national_index, source, fact FROM moved",
            &[&region, &indexes, &unrouted_days],
        )
        .await?;
    Ok(u64::try_from(held).unwrap_or_default())
}

/// Queues each fact for its person's home region, if the hub knows one other than the sender's; keeps one for an
/// index no region has claimed yet (for `unrouted_days`, swept here). Returns how many were routed.
async fn route(
    client: &impl GenericClient,
    source: &str,
    indexes: &[Vec<u8>],
    facts: &[serde_json::Value],
    unrouted_days: i32,
) -> Result<u64, tokio_postgres::Error> {
    let routed = client
        .execute(
            "INSERT INTO inbox (home, national_index, source, fact)
             SELECT r.region, x.i, $3, x.f FROM unnest($1::bytea[], $2::jsonb[]) AS x (i, f)
             JOIN residents r ON r.national_index = x.i WHERE r.region <> $3",
            &[&indexes, &facts, &source],
        )
        .await?;
    client
        .execute(
            "INSERT INTO unrouted (national_index, source, fact)
             SELECT x.i, $3, x.f FROM unnest($1::bytea[], $2::jsonb[]) AS x (i, f)
             WHERE NOT EXISTS (SELECT 1 FROM residents r WHERE r.national_index = x.i)",
            &[&indexes, &facts, &source],
        )
        .await?;
    client
        .execute(
            "DELETE FROM unrouted WHERE received_at < now() - make_interval(days => $1)",
            &[&unrouted_days],
        )
        .await?;
    Ok(routed)
}

/// Deletes the region's acknowledged deliveries, and returns the oldest still waiting.
async fn fetch(
    client: &impl GenericClient,
    home: &str,
    ack: &[i64],
    limit: usize,
) -> Result<Vec<Delivery>, ApiError> {
    client
        .execute(
            "DELETE FROM inbox WHERE home = $1 AND id = ANY($2)",
            &[&home, &ack],
        )
        .await?;
    let rows = client
        .query(
            "SELECT id, national_index, source, fact FROM inbox WHERE home = $1 ORDER BY id LIMIT $2",
            &[&home, &(limit as i64)],
        )
        .await?;
    rows.iter()
        .map(|row| {
            let fact: Fact = serde_json::from_value(row.get(3)).map_err(anyhow::Error::from)?;
            Ok(Delivery {
                id: row.get(0),
                index: to_hex(row.get::<_, &[u8]>(1)),
                source: row.get::<_, String>(2).trim().to_owned(),
                fact,
            })
        })
        .collect()
}

/// 422 on a list of more than `MAX_ENTRIES`, naming it.
fn at_most_entries(field: &str, len: usize) -> Result<(), ApiError> {
    if len > MAX_ENTRIES {
        return Err(ApiError::unprocessable(
            field,
            format!("at most {MAX_ENTRIES}"),
        ));
    }
    Ok(())
}
