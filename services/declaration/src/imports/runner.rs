//! Running one import: the batch's lock and record, the streamed body cut into lines, and a transaction per
//! chunk that lands the facts, the row errors, the progress and the `facts.imported` event together.

use actix_web::web;
use chrono::{DateTime, Utc};
use deadpool_postgres::{GenericClient, Object};
use futures_util::StreamExt;
use hc_platform::ApiError;
use hc_platform::events::FactsImported;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use std::sync::Arc;

use super::facts::{self, Columns, Kind, Row, RowContext, RowError};
use crate::state::AppState;

/// A line longer than this is not a fact row; refusing it bounds the memory one request can take.
const MAX_LINE_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Ndjson,
    Csv,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RowErrorView {
    /// Line number in the body (for CSV the header is line 1).
    pub row: i64,
    pub field: String,
    pub reason: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BatchView {
    pub batch_id: String,
    pub kind: String,
    /// `running`, `complete`, or `failed` (send the same batch again to resume after the last committed chunk).
    pub state: String,
    pub rows_read: i64,
    pub accepted: i64,
    pub rejected: i64,
    /// Rows whose fact was already stored (a resend, or the same fact in another batch).
    pub duplicates: i64,
    /// The last line whose chunk is committed.
    pub committed_through: i64,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// One page of row errors, in row order.
    pub errors: Vec<RowErrorView>,
    /// Pass as `errors_after` for the next page of errors; absent on the last page.
    pub next_errors_after: Option<i64>,
}

struct Counters {
    rows_read: i64,
    accepted: i64,
    rejected: i64,
    duplicates: i64,
    committed_through: i64,
    stored_errors: i64,
}

/// A stable 64-bit key for the batch's advisory lock.
const LOCK_SQL: &str = "SELECT pg_try_advisory_lock(hashtextextended($1 || '/' || $2, 0))";
const UNLOCK_SQL: &str = "SELECT pg_advisory_unlock(hashtextextended($1 || '/' || $2, 0))";

/// Imports the body as batch `batch_id` of `client_id`. Returns the batch and whether this call completed it
/// (`false`: it was complete already and nothing changed).
pub async fn import(
    state: &AppState,
    client_id: &str,
    batch_id: &str,
    kind: Kind,
    format: Format,
    mut body: web::Payload,
) -> Result<(BatchView, bool), ApiError> {
    let mut conn = state.db.get().await?;
    let locked: bool = conn
        .query_one(LOCK_SQL, &[&client_id, &batch_id])
        .await?
        .get(0);
    if !locked {
        return Err(ApiError::Conflict {
            field: None,
            detail: "this batch is being imported by another request".into(),
        });
    }
    let outcome = async {
        conn.execute(
            "INSERT INTO import_batches (client_id, batch_id, kind, state) VALUES ($1, $2, $3, 'running')
             ON CONFLICT (client_id, batch_id) DO NOTHING",
            &[&client_id, &batch_id, &kind.as_str()],
        )
        .await?;
        let row = conn
            .query_one(
                "SELECT kind, state, rows_read, accepted, rejected, duplicates, committed_through,
                        (SELECT count(*) FROM import_errors e WHERE e.client_id = b.client_id AND e.batch_id = b.batch_id)
                 FROM import_batches b WHERE client_id = $1 AND batch_id = $2",
                &[&client_id, &batch_id],
            )
            .await?;
        if row.get::<_, String>(0) != kind.as_str() {
            return Err(ApiError::Conflict {
                field: Some("Idempotency-Key".into()),
                detail: format!("batch {batch_id} is a {} import", row.get::<_, String>(0)),
            });
        }
        if row.get::<_, String>(1) == "complete" {
            return Ok(false);
        }
        conn.execute("UPDATE import_batches SET state = 'running' WHERE client_id = $1 AND batch_id = $2", &[&client_id, &batch_id])
            .await?;
        let mut counters = Counters {
            rows_read: row.get(2),
            accepted: row.get(3),
            rejected: row.get(4),
            duplicates: row.get(5),
            committed_through: row.get(6),
            stored_errors: row.get(7),
        };
        let streamed = stream_rows(state, &mut conn, client_id, batch_id, kind, format, &mut body, &mut counters).await;
        let final_state = if streamed.is_ok() { "complete" } else { "failed" };
        conn.execute(
            "UPDATE import_batches SET state = $3, finished_at = now() WHERE client_id = $1 AND batch_id = $2",
            &[&client_id, &batch_id, &final_state],
        )
        .await?;
        streamed.map(|()| true)
    }
    .await;
    // The lock is per session: release it before the connection goes back to the pool.
    let _ = conn.query_one(UNLOCK_SQL, &[&client_id, &batch_id]).await;
    let completed = outcome?;
    let view = view(&conn, client_id, batch_id, 0, 100)
        .await?
        .ok_or(ApiError::NotFound { what: "batch" })?;
    Ok((view, completed))
}

/// Lines of the body handed to a parser: `first_line` is the number of the first one.
struct Block {
    text: Vec<u8>,
    first_line: i64,
    last_line: i64,
}

/// A parsed block: valid facts, row errors, and the last line it covered.
struct Parsed {
    cols: Columns,
    errors: Vec<(i64, RowError)>,
    through: i64,
}

/// What every parser needs; cheap to clone into a blocking task.
#[derive(Clone)]
struct Parser {
    kind: Kind,
    format: Format,
    headers: Option<Arc<csv::StringRecord>>,
    index: hc_platform::privacy::BlindIndex,
    now: DateTime<Utc>,
    resume_after: i64,
}

impl Parser {
    fn parse(&self, block: Block) -> Parsed {
        let context = RowContext {
            index: &self.index,
            now: self.now,
        };
        let mut cols = Columns::default();
        let mut errors = Vec::new();
        for (offset, line) in block.text.split(|b| *b == b'\n').enumerate() {
            let line_no = block.first_line + offset as i64;
            if line_no > block.last_line {
                break;
            }
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line_no <= self.resume_after || line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let outcome = match (&self.headers, self.format) {
                (Some(headers), Format::Csv) => match csv_record(line) {
                    Some(record) => context.push(
                        self.kind,
                        Row::Csv {
                            headers,
                            record: &record,
                        },
                        &mut cols,
                    ),
                    None => Err(RowError {
                        field: "row".into(),
                        reason: "not a CSV record".into(),
                    }),
                },
                _ => context.push(self.kind, Row::Json(line), &mut cols),
            };
            if let Err(err) = outcome {
                errors.push((line_no, err));
            }
        }
        Parsed {
            cols,
            errors,
            through: block.last_line,
        }
    }
}

/// Reads the body line by line, in blocks of `import_chunk_rows` lines. Each block is parsed on a blocking
/// thread while the previous one is being committed, so validation and PostgreSQL work overlap on two cores.
/// Rows up to `committed_through` (landed by an earlier attempt) are skipped.
#[allow(clippy::too_many_arguments)]
async fn stream_rows(
    state: &AppState,
    conn: &mut Object,
    client_id: &str,
    batch_id: &str,
    kind: Kind,
    format: Format,
    body: &mut web::Payload,
    counters: &mut Counters,
) -> Result<(), ApiError> {
    let chunk_rows = state.settings.import_chunk_rows;
    let mut parser = Parser {
        kind,
        format,
        headers: None,
        index: state.index.clone(),
        now: Utc::now(),
        resume_after: counters.committed_through,
    };
    let mut pending: Vec<u8> = Vec::new();
    let mut block = Block {
        text: Vec::new(),
        first_line: 1,
        last_line: 0,
    };
    let mut line_no: i64 = 0;
    let mut total_bytes: u64 = 0;
    let mut in_flight: Option<tokio::task::JoinHandle<Parsed>> = None;
    let idle = std::time::Duration::from_millis(state.settings.import_idle_timeout_ms);
    let mut finished = false;

    let read: Result<(), ApiError> = async {
        while !finished {
            let piece = tokio::time::timeout(idle, body.next())
                .await
                .map_err(|_| ApiError::Timeout)?;
            match piece {
                Some(piece) => {
                    let piece = piece.map_err(|_| ApiError::BadRequest {
                        detail: "the body could not be read".into(),
                    })?;
                    total_bytes += piece.len() as u64;
                    if total_bytes > state.settings.import_max_bytes {
                        return Err(ApiError::PayloadTooLarge {
                            detail: "the import is larger than declaration.import_max_bytes".into(),
                        });
                    }
                    pending.extend_from_slice(&piece);
                }
                None => {
                    // The last line may lack its newline.
                    if !pending.is_empty() && pending.last() != Some(&b'\n') {
                        pending.push(b'\n');
                    }
                    finished = true;
                }
            }
            let mut start = 0;
            while let Some(pos) = pending[start..].iter().position(|b| *b == b'\n') {
                line_no += 1;
                let line = &pending[start..start + pos];
                start += pos + 1;
                if format == Format::Csv && parser.headers.is_none() {
                    let headers =
                        csv_record(line.strip_suffix(b"\r").unwrap_or(line)).ok_or_else(|| {
                            ApiError::unprocessable("body", "the CSV header line is missing")
                        })?;
                    parser.headers = Some(Arc::new(headers));
                    block.first_line = line_no + 1;
                    continue;
                }
                block.text.extend_from_slice(line);
                block.text.push(b'\n');
                block.last_line = line_no;
                if block.last_line - block.first_line + 1 >= chunk_rows as i64 {
                    let next = Block {
                        text: Vec::new(),
                        first_line: line_no + 1,
                        last_line: line_no,
                    };
                    let full = std::mem::replace(&mut block, next);
                    let task = parser.clone();
                    let parsing = tokio::task::spawn_blocking(move || task.parse(full));
                    if let Some(previous) = in_flight.replace(parsing) {
                        let parsed = previous
                            .await
                            .map_err(|e| anyhow::anyhow!("parser task: {e}"))?;
                        commit_chunk(state, conn, client_id, batch_id, kind, parsed, counters)
                            .await?;
                    }
                }
            }
            pending.drain(..start);
            if pending.len() > MAX_LINE_BYTES {
                return Err(ApiError::unprocessable(
                    "body",
                    format!("line {} is longer than {MAX_LINE_BYTES} bytes", line_no + 1),
                ));
            }
        }
        Ok(())
    }
    .await;
    // A block received whole is committed even when the body breaks off later; the partial block after it is not
    // (its last line may be cut).
    if let Some(previous) = in_flight.take() {
        let parsed = previous
            .await
            .map_err(|e| anyhow::anyhow!("parser task: {e}"))?;
        commit_chunk(state, conn, client_id, batch_id, kind, parsed, counters).await?;
    }
    read?;
    let mut last = parser.parse(block);
    last.through = line_no.max(parser.resume_after);
    commit_chunk(state, conn, client_id, batch_id, kind, last, counters).await
}

fn csv_record(line: &[u8]) -> Option<csv::StringRecord> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(line);
    reader.records().next()?.ok()
}

/// One transaction: the chunk's facts, its row errors, the batch's progress and the event.
#[allow(clippy::too_many_arguments)]
async fn commit_chunk(
    state: &AppState,
    conn: &mut Object,
    client_id: &str,
    batch_id: &str,
    kind: Kind,
    parsed: Parsed,
    counters: &mut Counters,
) -> Result<(), ApiError> {
    let Parsed {
        cols,
        errors,
        through,
    } = parsed;
    let (cols, errors) = (&cols, &errors);
    let tx = conn.transaction().await?;
    let new = facts::insert(&tx, kind, cols).await? as i64;
    let keep = (state.settings.import_max_errors - counters.stored_errors)
        .clamp(0, errors.len() as i64) as usize;
    if keep > 0 {
        let rows: Vec<i64> = errors[..keep].iter().map(|(n, _)| *n).collect();
        let fields: Vec<&str> = errors[..keep]
            .iter()
            .map(|(_, e)| e.field.as_str())
            .collect();
        let reasons: Vec<&str> = errors[..keep]
            .iter()
            .map(|(_, e)| e.reason.as_str())
            .collect();
        tx.execute(
            "INSERT INTO import_errors (client_id, batch_id, row_no, field, reason)
             SELECT $1, $2, * FROM unnest($3::bigint[], $4::text[], $5::text[]) ON CONFLICT DO NOTHING",
            &[&client_id, &batch_id, &rows, &fields, &reasons],
        )
        .await?;
    }
    let valid = cols.len() as i64;
    counters.rows_read += valid + errors.len() as i64;
    counters.accepted += new;
    counters.duplicates += valid - new;
    counters.rejected += errors.len() as i64;
    counters.stored_errors += keep as i64;
    counters.committed_through = through;
    tx.execute(
        "UPDATE import_batches SET rows_read = $3, accepted = $4, rejected = $5, duplicates = $6, committed_through = $7
         WHERE client_id = $1 AND batch_id = $2",
        &[&client_id, &batch_id, &counters.rows_read, &counters.accepted, &counters.rejected, &counters.duplicates, &through],
    )
    .await?;
    if valid > 0 {
        // Everyone with a valid row in the chunk (whether their fact was new or a duplicate) and their facts, in the
        // same order: consumers store them idempotently by the same unique keys.
        let event = FactsImported {
            client_id: client_id.into(),
            batch_id: batch_id.into(),
            through_row: Some(through),
            people: cols.index.clone(),
            facts: cols.event_facts(kind),
        };
        hc_platform::outbox::enqueue(&tx, FactsImported::STREAM, &event.encode()).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The batch with one page of its row errors (rows after `errors_after`).
pub async fn view(
    client: &impl GenericClient,
    client_id: &str,
    batch_id: &str,
    errors_after: i64,
    limit: i64,
) -> Result<Option<BatchView>, ApiError> {
    let Some(b) = client
        .query_opt(
            "SELECT kind, state, rows_read, accepted, rejected, duplicates, committed_through, started_at, finished_at
             FROM import_batches WHERE client_id = $1 AND batch_id = $2",
            &[&client_id, &batch_id],
        )
        .await?
    else {
        return Ok(None);
    };
    let rows = client
        .query(
            "SELECT row_no, field, reason FROM import_errors
             WHERE client_id = $1 AND batch_id = $2 AND row_no > $3 ORDER BY row_no LIMIT $4",
            &[&client_id, &batch_id, &errors_after, &(limit + 1)],
        )
        .await?;
    let more = rows.len() as i64 > limit;
    let errors: Vec<RowErrorView> = rows
        .iter()
        .take(limit as usize)
        .map(|r| RowErrorView {
            row: r.get(0),
            field: r.get(1),
            reason: r.get(2),
        })
        .collect();
    let next_errors_after = if more {
        errors.last().map(|e| e.row)
    } else {
        None
    };
    Ok(Some(BatchView {
        batch_id: batch_id.to_owned(),
        kind: b.get(0),
        state: b.get(1),
        rows_read: b.get(2),
        accepted: b.get(3),
        rejected: b.get(4),
        duplicates: b.get(5),
        committed_through: b.get(6),
        started_at: b.get(7),
        finished_at: b.get(8),
        errors,
        next_errors_after,
    }))
}
