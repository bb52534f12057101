-- The national fact exchange (docs/interop.md). A person's national blind index, from person.registered: facts
-- other regions report about them arrive keyed by it.
ALTER TABLE person_links ADD COLUMN national_index bytea UNIQUE;

-- Messages for the national hub, written in the transaction of what they report (a registration, an import's
-- chunk) and sent by the exchange loop, which deletes them once the hub has answered: nothing committed here is
-- lost on the way, and a message sent twice is harmless (residents are upserted, facts have natural keys).
CREATE TABLE hub_outbox (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message    jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- How far this platform has fetched its residents' facts from the hub.
CREATE TABLE hub_cursor (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    after    bigint NOT NULL
);
