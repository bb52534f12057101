-- Events scoring has handled to the end (their facts stored and everyone they touch recoloured), by the publisher's
-- event id. After a Redis restart the relays publish again what the restart may have lost (hc_platform::outbox), and
-- most of it was handled already: an event found here is skipped instead of recolouring its people again. Written
-- after the recolouring, so an event interrupted between its commit and its recolouring is handled again whole.
-- Kept two hours, longer than the publishers keep their published outbox rows (one hour).
CREATE TABLE handled_events (
    event_id   text PRIMARY KEY,
    handled_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX handled_events_at_idx ON handled_events (handled_at);

-- A day's declaration is replaced only by a later one, by the publisher's outbox id (declaration writes one person's
-- declarations one at a time, so their ids are in order). Replays and redeliveries can bring an older declaration
-- after a newer one: last-handled-wins let it overwrite the newer (make chaos, redis-aof).
ALTER TABLE f_declarations ADD COLUMN event_seq bigint;
