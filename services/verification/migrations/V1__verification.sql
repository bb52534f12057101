-- Verification's own data: venues and their devices, the people it can look up (from person.registered), the cases
-- the co-traveller check needs (from facts.imported), every scan and check-in (partitioned by day), the trust list
-- of other issuers, the audit log and the outbox.

CREATE TABLE venues (
    id         text PRIMARY KEY,
    name       text NOT NULL,
    region     char(6) NOT NULL,
    -- The venue policy (routes/venues.rs): colours, negative test within hours, international variant, hours.
    policy     jsonb NOT NULL,
    updated_by text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- A checkpoint device (an API client with `verify`) is bound to one venue.
CREATE TABLE devices (
    client_id text PRIMARY KEY,
    venue_id  text NOT NULL REFERENCES venues (id) ON DELETE CASCADE
);
CREATE INDEX devices_venue_idx ON devices (venue_id);

-- From person.registered: the blind index of the ID number (the ID-card path) and the masked name the guard
-- compares with the card.
CREATE TABLE persons (
    person_id   uuid PRIMARY KEY,
    id_index    bytea NOT NULL UNIQUE,
    masked_name text
);

-- From facts.imported (kind cases): confirmed and asymptomatic cases, for the co-traveller check.
CREATE TABLE cases (
    id_index bytea NOT NULL,
    since    date NOT NULL,
    PRIMARY KEY (id_index, since)
);

-- Every scan at a checkpoint and every check-in with a venue code, for contact tracing. Partitioned by day
-- (partitions.rs creates them ahead and drops them after verification.retention_days). `person_id` is null for
-- other issuers' codes, whose subject only their issuer can open.
CREATE TABLE scan_events (
    at        timestamptz NOT NULL,
    id        uuid NOT NULL,
    kind      text NOT NULL CHECK (kind IN ('scan', 'id_card', 'checkin')),
    venue_id  text NOT NULL,
    client_id text,
    person_id uuid,
    issuer    char(6),
    colour    text,
    decision  text NOT NULL,
    reason    text
) PARTITION BY RANGE (at);
CREATE INDEX scan_events_venue_idx ON scan_events (venue_id, at);
CREATE INDEX scan_events_person_idx ON scan_events (person_id, at) WHERE person_id IS NOT NULL;

-- Other regions' trust lists, imported against their pinned root keys, with the table mapping their colours to ours.
CREATE TABLE trust_peers (
    region      char(6) PRIMARY KEY,
    signed      text NOT NULL,
    sequence    bigint NOT NULL,
    expires_at  timestamptz NOT NULL,
    colour_map  jsonb NOT NULL,
    imported_by text NOT NULL,
    imported_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE audit_log (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at      timestamptz NOT NULL DEFAULT now(),
    actor   text NOT NULL,
    action  text NOT NULL,
    subject uuid,
    reason  text,
    outcome text NOT NULL
);

-- Transactional outbox (hc_platform::outbox): check-ins as visit facts for scoring.
CREATE TABLE outbox (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream       text NOT NULL,
    payload      jsonb NOT NULL,
    traceparent  text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX outbox_unpublished_idx ON outbox (id) WHERE published_at IS NULL;
