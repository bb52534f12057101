-- The scheduler asks every 10 s which statuses are due for a recheck (`recheck_at <= now()`). Without an index that
-- read every status: over a million people it was the second largest PostgreSQL cost under load (docs/capacity.md).
-- Built in the migration's transaction, so it holds writes to `status` while it builds (seconds for a million rows).
CREATE INDEX status_recheck_idx ON status (recheck_at);
