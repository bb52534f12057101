//! Running one import: the batch locked and opened, the streamed body framed into blocks of lines, each block
//! parsed on a blocking thread while the one before it commits, and a transaction per block that lands the facts,
//! the row errors, the progress and the `facts.imported` event together.

use std::sync::Arc;

use actix_web::web;
use chrono::{DateTime, Utc};
use deadpool_postgres::Object;
use futures_util::StreamExt;
use hc_domain::RegionCode;
use hc_platform::ApiError;
use hc_platform::events::FactsImported;

use super::batches::{BatchKey, BatchView, Opened, Progress};
use super::facts::{self, Columns, Kind, Row, RowContext, RowError};
use super::framing::{Block, Format, Framer, FramingError, csv_record};
use crate::state::AppState;

/// Imports the body as batch `batch_id` of `client_id`, whose rows must arise within `client_region` (none:
/// nationwide). Returns the batch and whether this call completed it
/// (`false`: it was complete already and nothing changed).
pub async fn import(
    state: &AppState,
    client_id: &str,
    client_region: Option<RegionCode>,
    batch_id: &str,
    kind: Kind,
    format: Format,
    body: &mut web::Payload,
) -> Result<(BatchView, bool), ApiError> {
    let key = BatchKey {
        client_id,
        batch_id,
    };
    let mut conn = state.db.get().await?;
    if !key.try_lock(&conn).await? {
        return Err(ApiError::InProgress {
            field: None,
            detail: "this batch is being imported by another request".into(),
            // The other request may hold the batch for minutes: come back as a refused import does, or read
            // GET /v1/imports/{batch}.
            retry_after: state.settings.import_retry_after_seconds.max(1),
        });
    }
    let outcome = async {
        let progress = match key.open(&conn, kind).await? {
            Opened::Resume(progress) => progress,
            Opened::Complete => return Ok(false),
            Opened::OtherKind(other) => {
                return Err(ApiError::Conflict {
                    field: Some("Idempotency-Key".into()),
                    detail: format!("batch {batch_id} is a {other} import"),
                });
            }
        };
        let mut job = Job {
            state,
            conn: &mut conn,
            key,
            kind,
            client_region,
            progress,
        };
        let streamed = job.stream(format, body).await;
        key.finish(&conn, streamed.is_ok()).await?;
        streamed.map(|()| true)
    }
    .await;
    key.unlock(&conn).await;
    let completed = outcome?;
    let view = key
        .view(&conn, 0, 100)
        .await?
        .ok_or(ApiError::NotFound { what: "batch" })?;
    Ok((view, completed))
}

/// One import under way: its batch, its connection (holding the batch's lock) and its progress.
struct Job<'a> {
    state: &'a AppState,
    conn: &'a mut Object,
    key: BatchKey<'a>,
    kind: Kind,
    client_region: Option<RegionCode>,
    progress: Progress,
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
    national: Option<hc_platform::privacy::BlindIndex>,
    now: DateTime<Utc>,
    client_region: Option<RegionCode>,
    resume_after: i64,
}

impl Parser {
    fn parse(&self, block: Block) -> Parsed {
        let context = RowContext {
            index: &self.index,
            national: self.national.as_ref(),
            now: self.now,
            client_region: self.client_region,
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

/// An upload's rows framed and checked as an import frames and checks them, storing nothing: how many facts would
/// be stored, and the row errors by line. The import parsers' fuzz target (libs/fuzz) runs this.
pub fn check_upload(
    kind: Kind,
    format: Format,
    body: &[u8],
    client_region: Option<RegionCode>,
    index: &hc_platform::privacy::BlindIndex,
    now: DateTime<Utc>,
) -> Result<(usize, Vec<(i64, RowError)>), FramingError> {
    let mut framer = Framer::new(format, 100, 64 * 1024);
    let mut blocks = Vec::new();
    for piece in body.chunks(4096) {
        blocks.extend(framer.push(piece)?);
    }
    blocks.extend(framer.finish()?);
    let parser = Parser {
        kind,
        format,
        headers: framer.headers(),
        index: index.clone(),
        national: None,
        now,
        client_region,
        resume_after: 0,
    };
    blocks.push(framer.into_rest());
    let (mut facts, mut errors) = (0, Vec::new());
    for parsed in blocks.into_iter().map(|b| parser.parse(b)) {
        facts += parsed.cols.len();
        errors.extend(parsed.errors);
    }
    Ok((facts, errors))
}

impl Job<'_> {
    /// Reads the body in blocks of `import_chunk_rows` lines. Each block is parsed on a blocking thread while the
    /// previous one is being committed, so validation and PostgreSQL work overlap on two cores. Rows up to
    /// `committed_through` (landed by an earlier attempt) are skipped.
    async fn stream(&mut self, format: Format, body: &mut web::Payload) -> Result<(), ApiError> {
        let settings = &self.state.settings;
        let mut framer = Framer::new(
            format,
            settings.import_chunk_rows,
            settings.import_block_max_bytes,
        );
        let mut parser = Parser {
            kind: self.kind,
            format,
            headers: None,
            index: self.state.index.clone(),
            national: self.state.national.clone(),
            now: Utc::now(),
            client_region: self.client_region,
            resume_after: self.progress.committed_through,
        };
        let mut in_flight: Option<tokio::task::JoinHandle<Parsed>> = None;
        let idle = std::time::Duration::from_millis(settings.import_idle_timeout_ms);
        // However steadily the body arrives, an import holds its turn and a connection for a bounded time.
        let deadline = tokio::time::Instant::now()
            + std::time::Duration::from_secs(settings.import_max_seconds);
        let mut total_bytes: u64 = 0;
        let read: Result<(), ApiError> = async {
            loop {
                let wait_until = deadline.min(tokio::time::Instant::now() + idle);
                let piece = tokio::time::timeout_at(wait_until, body.next())
                    .await
                    .map_err(|_| ApiError::Timeout)?;
                let finished = piece.is_none();
                let blocks = match piece {
                    Some(piece) => {
                        let piece = piece.map_err(|_| ApiError::BadRequest {
                            detail: "the body could not be read".into(),
                        })?;
                        total_bytes += piece.len() as u64;
                        if total_bytes > settings.import_max_bytes {
                            return Err(ApiError::PayloadTooLarge {
                                detail: "the import is larger than declaration.import_max_bytes"
                                    .into(),
                            });
                        }
                        framer.push(&piece)
                    }
                    None => framer.finish(),
                }
                .map_err(|e| ApiError::unprocessable("body", e.to_string()))?;
                if parser.headers.is_none() {
                    parser.headers = framer.headers();
                }
                for block in blocks {
                    let task = parser.clone();
                    let parsing = tokio::task::spawn_blocking(move || task.parse(block));
                    if let Some(previous) = in_flight.replace(parsing) {
                        self.commit(joined(previous).await?).await?;
                    }
                }
                if finished {
                    return Ok(());
                }
            }
        }
        .await;
        // A block received whole is committed even when the body breaks off later; the partial block after it is
        // not (its last line may be cut).
        if let Some(previous) = in_flight.take() {
            self.commit(joined(previous).await?).await?;
        }
        read?;
        let through = framer.lines_read().max(parser.resume_after);
        let mut last = parser.parse(framer.into_rest());
        last.through = through;
        self.commit(last).await
    }

    /// One transaction: the block's facts, its row errors, the batch's progress and the event.
    async fn commit(&mut self, parsed: Parsed) -> Result<(), ApiError> {
        let Parsed {
            cols,
            errors,
            through,
        } = parsed;
        let p = &mut self.progress;
        let tx = self.conn.transaction().await?;
        let sender = facts::Sender {
            client_id: self.key.client_id,
            batch_id: self.key.batch_id,
        };
        let new = facts::insert(&tx, self.kind, &cols, sender).await? as i64;
        let keep = (self.state.settings.import_max_errors - p.stored_errors)
            .clamp(0, errors.len() as i64) as usize;
        self.key.store_errors(&tx, &errors[..keep]).await?;
        let valid = cols.len() as i64;
        p.rows_read += valid + errors.len() as i64;
        p.accepted += new;
        p.duplicates += valid - new;
        p.rejected += errors.len() as i64;
        p.stored_errors += keep as i64;
        p.committed_through = through;
        self.key.save_progress(&tx, p).await?;
        if valid > 0 {
            // Everyone with a valid row in the block (whether their fact was new or a duplicate) and their facts, in
            // the same order: consumers store them idempotently by the same unique keys.
            let event = FactsImported {
                client_id: self.key.client_id.into(),
                batch_id: self.key.batch_id.into(),
                through_row: Some(through),
                correction: false,
                people: cols.index.clone(),
                facts: cols.event_facts(self.kind),
            };
            hc_platform::outbox::enqueue(&tx, FactsImported::STREAM, &event.encode()).await?;
            if self.state.national.is_some() {
                // People not registered here: their facts go to their home region, durably with the chunk.
                crate::exchange::queue_outbound(&tx, &self.state.settings.region, self.kind, &cols)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }
}

async fn joined(parsing: tokio::task::JoinHandle<Parsed>) -> Result<Parsed, ApiError> {
    Ok(parsing
        .await
        .map_err(|e| anyhow::anyhow!("parser task: {e}"))?)
}
