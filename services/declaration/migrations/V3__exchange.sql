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

-- A message the hub refused for good (a 4xx other than 408 and 429): kept with the reason for an operator, so that
-- it does not block the ones behind it.
CREATE TABLE hub_refused (
    id         bigint PRIMARY KEY,
    message    jsonb NOT NULL,
    reason     text NOT NULL,
    refused_at timestamptz NOT NULL DEFAULT now()
);

-- The deliveries from the hub this platform has stored and not yet acknowledged: sent with the next fetch, in the
-- transaction that stores the next ones. One row, locked by the replica fetching.
CREATE TABLE hub_acks (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    pending  bigint[] NOT NULL
);
INSERT INTO hub_acks (pending) VALUES ('{}');
