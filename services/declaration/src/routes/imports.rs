use actix_web::http::header::CONTENT_TYPE;
use actix_web::{HttpRequest, HttpResponse, web};
use hc_platform::ApiError;
use hc_platform::auth::{AnyImport, Official};
use hc_platform::http::idempotency_key;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::imports::{self, BatchView, Kind};
use crate::state::AppState;

/// Import a batch of facts: `kind` is `nat-results` (scope `import:nat`), `cases` (`import:cases`) or `visits`
/// (`import:visits`). The body is NDJSON (`application/x-ndjson`) or CSV with a header line (`text/csv`), people
/// named by ID number; it is streamed, validated row by row, and landed a chunk per transaction. Bad rows are
/// reported and skipped. The `Idempotency-Key` is the batch id: sending a complete batch again changes nothing; sending
/// an interrupted one again resumes after its last committed chunk.
///
/// Rows — nat-results: `id_number, sample_time (RFC 3339), result (positive|negative), lab, region?` (where the
/// sample was taken); cases: `id_number, status (confirmed|suspected|asymptomatic|close_contact|secondary_contact|
/// recovered), since, until?` (dates), `region?` (the reporting region); visits: `id_number, region (GB/T 2260),
/// first_seen, last_seen (RFC 3339), source (carrier|venue)`. A regional client's rows must arise within its region
/// (a row naming another is rejected on `region`); a row without a region arose in the client's. Every fact keeps
/// the client and batch that first sent it; a row matching a stored fact changes nothing (a correction does).
#[utoipa::path(post, path = "/v1/imports/{id}", tag = "imports", security(("bearer" = ["import:nat", "import:cases", "import:visits"])),
    params(("id" = String, Path, description = "The kind of facts: nat-results, cases or visits (the path is one with `GET /v1/imports/{id}`, where it names a batch)"),
           ("Idempotency-Key" = String, Header, description = "The client-chosen batch id")),
    request_body(content = String, content_type = "application/x-ndjson", description = "One JSON object per line, or text/csv with a header line"),
    responses(
        (status = 201, description = "Imported; counts and the first row errors", body = BatchView),
        (status = 200, description = "This batch was complete already; nothing changed", body = BatchView),
        (status = 403, description = "The client lacks the kind's scope", body = hc_platform::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "The batch is being imported by another request (retry after Retry-After), or is of another kind", body = hc_platform::error::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Neither NDJSON nor CSV", body = hc_platform::error::Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than `declaration.import_max_bytes`", body = hc_platform::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown kind, missing batch id or CSV header, or a line longer than 64 KiB", body = hc_platform::error::Problem, content_type = "application/problem+json"),
        (status = 429, description = "This client already has `declaration.import_max_per_client` imports running here: send the batch after Retry-After seconds", body = hc_platform::error::Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "As many imports as this replica takes at once have been running for as long as a batch waits its turn (or the service is overloaded), or the import ran past `declaration.import_max_seconds` or stalled past `declaration.import_idle_timeout_ms` (it resumes after its last committed block): send the batch again after Retry-After seconds", body = hc_platform::error::Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
pub async fn upload(
    state: web::Data<AppState>,
    official: Official<AnyImport>,
    req: HttpRequest,
    path: web::Path<String>,
    mut body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    // A refusal may leave the body unread: the platform holds it so that actix closes the connection rather than
    // reading the rest (hc_platform::unread_body).
    let kind = (path.parse::<Kind>())
        .map_err(|_| ApiError::unprocessable("kind", "must be nat-results, cases or visits"))?;
    official.require(kind.scope())?;
    let batch_id = (idempotency_key(&req).ok().flatten()).ok_or_else(|| {
        ApiError::unprocessable(
            "Idempotency-Key",
            "the batch id (1 to 200 visible ASCII characters) is required",
        )
    })?;
    let mime = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap_or("");
    let format = match mime.trim() {
        "application/x-ndjson" | "application/jsonl" | "application/json-seq" => {
            imports::Format::Ndjson
        }
        "text/csv" => imports::Format::Csv,
        _ => {
            return Err(ApiError::UnsupportedMediaType {
                detail: "send application/x-ndjson or text/csv".into(),
            });
        }
    };
    // One client cannot take every turn: a lab's second import waits for its first.
    let _client_turn = state
        .imports_by_client
        .take(&official.client_id, state.settings.import_max_per_client)
        .ok_or(ApiError::TooManyRequests {
            retry_after: state.settings.import_retry_after_seconds.max(1),
        })?;
    // Taken before the body is read: a refused upload costs the lab a resend, not us a parse. The short wait
    // absorbs the bunching of arrivals; a longer one would only hold connections while the CPU is spoken for.
    let _permit = match &state.import_permits {
        Some(permits) => {
            let wait = std::time::Duration::from_millis(state.settings.import_queue_ms);
            match tokio::time::timeout(wait, permits.clone().acquire_owned()).await {
                Ok(Ok(permit)) => Some(permit),
                _ => {
                    metrics::counter!("http_requests_shed_total", "reason" => "imports_at_capacity")
                        .increment(1);
                    return Err(ApiError::Overloaded {
                        retry_after: state.settings.import_retry_after_seconds.max(1),
                    });
                }
            }
        }
        None => None,
    };
    let (view, completed) = imports::import(
        &state,
        &official.client_id,
        official.region,
        &batch_id,
        kind,
        format,
        &mut body,
    )
    .await?;
    tracing::info!(batch = %batch_id, kind = kind.as_str(), accepted = view.accepted, rejected = view.rejected, "import finished");
    Ok(if completed {
        HttpResponse::Created().json(view)
    } else {
        HttpResponse::Ok().json(view)
    })
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatusQuery {
    /// Show row errors after this row (the previous page's `next_errors_after`).
    pub errors_after: Option<i64>,
    /// Row errors per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

/// A batch's state and progress (updated per committed chunk, so it can be polled while the import runs) and a
/// page of its row errors. Clients see their own batches only. Served from a read replica where one is configured,
/// so it may be a moment behind the import's own answer (a batch just created may briefly answer 404).
#[utoipa::path(get, path = "/v1/imports/{id}", tag = "imports", security(("bearer" = ["import:nat", "import:cases", "import:visits"])),
    params(("id" = String, Path, description = "The batch id (the import's Idempotency-Key)"), StatusQuery),
    responses(
        (status = 200, description = "The batch", body = BatchView),
        (status = 404, description = "No such batch of this client", body = hc_platform::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn status(
    state: web::Data<AppState>,
    official: Official<AnyImport>,
    path: web::Path<String>,
    query: web::Query<StatusQuery>,
) -> Result<web::Json<BatchView>, ApiError> {
    let limit = hc_platform::http::page_limit(query.limit, 100, 1000)?;
    // Polled while the import runs: a replica's view, a moment behind, is what the poll is for.
    let client = state.db_read.get().await?;
    imports::BatchKey {
        client_id: &official.client_id,
        batch_id: &path,
    }
    .view(&client, query.errors_after.unwrap_or(0), limit)
    .await?
    .map(web::Json)
    .ok_or(ApiError::NotFound { what: "batch" })
}
