//! An import batch in PostgreSQL: its advisory lock, its record and progress, its stored row errors, and the view the
//! API answers with.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use hc_platform::ApiError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::facts::{Kind, RowError};

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

/// A batch's progress, as stored after each committed chunk.
pub struct Progress {
    pub rows_read: i64,
    pub accepted: i64,
    pub rejected: i64,
    pub duplicates: i64,
    pub committed_through: i64,
    pub stored_errors: i64,
}

/// One batch of one client: the key of its record, its lock and its errors.
#[derive(Clone, Copy)]
pub struct BatchKey<'a> {
    pub client_id: &'a str,
    pub batch_id: &'a str,
}

/// What opening a batch found.
pub enum Opened {
    /// New, failed or interrupted: go on after its committed progress.
    Resume(Progress),
    /// Complete already: nothing to do.
    Complete,
    /// The key was used for an import of this other kind.
    OtherKind(String),
}

impl BatchKey<'_> {
    /// A session lock (a stable 64-bit key); `false` when another request holds it.
    pub async fn try_lock(self, client: &impl GenericClient) -> Result<bool, ApiError> {
        Ok(client
            .query_one(
                "SELECT pg_try_advisory_lock(hashtextextended($1 || '/' || $2, 0))",
                &[&self.client_id, &self.batch_id],
            )
            .await?
            .get(0))
    }

    /// Releases the lock; it is per session, so this must happen before the connection goes back to the pool.
    pub async fn unlock(self, client: &impl GenericClient) {
        let _ = client
            .query_one(
                "SELECT pg_advisory_unlock(hashtextextended($1 || '/' || $2, 0))",
                &[&self.client_id, &self.batch_id],
            )
            .await;
    }

    /// Creates the batch's record or finds it, and marks it running unless it is complete.
    pub async fn open(self, client: &impl GenericClient, kind: Kind) -> Result<Opened, ApiError> {
        client
            .execute(
                "INSERT INTO import_batches (client_id, batch_id, kind, state) VALUES ($1, $2, $3, 'running')
                 ON CONFLICT (client_id, batch_id) DO NOTHING",
                &[&self.client_id, &self.batch_id, &kind.as_str()],
            )
            .await?;
        let row = client
            .query_one(
                "SELECT kind, state, rows_read, accepted, rejected, duplicates, committed_through,
                        (SELECT count(*) FROM import_errors e WHERE e.client_id = b.client_id AND e.batch_id = b.batch_id)
                 FROM import_batches b WHERE client_id = $1 AND batch_id = $2",
                &[&self.client_id, &self.batch_id],
            )
            .await?;
        let stored_kind: String = row.get(0);
        if stored_kind != kind.as_str() {
            return Ok(Opened::OtherKind(stored_kind));
        }
        if row.get::<_, String>(1) == "complete" {
            return Ok(Opened::Complete);
        }
        self.set_state(client, "running").await?;
        Ok(Opened::Resume(Progress {
            rows_read: row.get(2),
            accepted: row.get(3),
            rejected: row.get(4),
            duplicates: row.get(5),
            committed_through: row.get(6),
            stored_errors: row.get(7),
        }))
    }

    async fn set_state(self, client: &impl GenericClient, state: &str) -> Result<(), ApiError> {
        client
            .execute(
                "UPDATE import_batches SET state = $3 WHERE client_id = $1 AND batch_id = $2",
                &[&self.client_id, &self.batch_id, &state],
            )
            .await?;
        Ok(())
    }

    /// `complete` or `failed`, with the time.
    pub async fn finish(self, client: &impl GenericClient, complete: bool) -> Result<(), ApiError> {
        let state = if complete { "complete" } else { "failed" };
        client
            .execute(
                "UPDATE import_batches SET state = $3, finished_at = now() WHERE client_id = $1 AND batch_id = $2",
                &[&self.client_id, &self.batch_id, &state],
            )
            .await?;
        Ok(())
    }

    /// Stores row errors (a resend stores none twice).
    pub async fn store_errors(
        self,
        client: &impl GenericClient,
        errors: &[(i64, RowError)],
    ) -> Result<(), ApiError> {
        if errors.is_empty() {
            return Ok(());
        }
        let rows: Vec<i64> = errors.iter().map(|(n, _)| *n).collect();
        let fields: Vec<&str> = errors.iter().map(|(_, e)| e.field.as_str()).collect();
        let reasons: Vec<&str> = errors.iter().map(|(_, e)| e.reason.as_str()).collect();
        client
            .execute(
                "INSERT INTO import_errors (client_id, batch_id, row_no, field, reason)
                 SELECT $1, $2, * FROM unnest($3::bigint[], $4::text[], $5::text[]) ON CONFLICT DO NOTHING",
                &[&self.client_id, &self.batch_id, &rows, &fields, &reasons],
            )
            .await?;
        Ok(())
    }

    pub async fn save_progress(
        self,
        client: &impl GenericClient,
        p: &Progress,
    ) -> Result<(), ApiError> {
        client
            .execute(
                "UPDATE import_batches SET rows_read = $3, accepted = $4, rejected = $5, duplicates = $6, committed_through = $7
                 WHERE client_id = $1 AND batch_id = $2",
                &[&self.client_id, &self.batch_id, &p.rows_read, &p.accepted, &p.rejected, &p.duplicates, &p.committed_through],
            )
            .await?;
        Ok(())
    }

    /// The batch with one page of its row errors (rows after `errors_after`).
    pub async fn view(
        self,
        client: &impl GenericClient,
        errors_after: i64,
        limit: i64,
    ) -> Result<Option<BatchView>, ApiError> {
        let Some(b) = client
            .query_opt(
                "SELECT kind, state, rows_read, accepted, rejected, duplicates, committed_through, started_at, finished_at
                 FROM import_batches WHERE client_id = $1 AND batch_id = $2",
                &[&self.client_id, &self.batch_id],
            )
            .await?
        else {
            return Ok(None);
        };
        let rows = client
            .query(
                "SELECT row_no, field, reason FROM import_errors
                 WHERE client_id = $1 AND batch_id = $2 AND row_no > $3 ORDER BY row_no LIMIT $4",
                &[&self.client_id, &self.batch_id, &errors_after, &(limit + 1)],
            )
            .await?;
        let errors = rows.iter().map(|r| RowErrorView {
            row: r.get(0),
            field: r.get(1),
            reason: r.get(2),
        });
        let (errors, next_errors_after) =
            hc_platform::http::page(errors.collect(), limit, |e: &RowErrorView| e.row);
        Ok(Some(BatchView {
            batch_id: self.batch_id.to_owned(),
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
}
