-- A check-in's Idempotency-Key, written in the transaction that records the check-in: a repeat finds the first
-- check-in here even when Redis, which answers repeats on the fast path, has lost the key (restarted empty, or the
-- first request cut off before it could write its answer there). The scan log is partitioned by time, so it cannot
-- hold a unique (person, key) itself. Keys are remembered for a day and swept by the partition maintenance.
CREATE TABLE checkin_keys (
    person_id  uuid NOT NULL,
    key        text NOT NULL,
    checkin_id uuid NOT NULL,
    venue_id   text NOT NULL,
    at         timestamptz NOT NULL,
    PRIMARY KEY (person_id, key)
);
CREATE INDEX checkin_keys_at_idx ON checkin_keys (at);
