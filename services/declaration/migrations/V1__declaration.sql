-- Daily declarations: one current declaration per person and day (Asia/Shanghai); a later one supersedes it and
-- both stay in the history.
CREATE TABLE declarations (
    id                 uuid PRIMARY KEY,
    person_id          uuid NOT NULL,
    day                date NOT NULL,
    current_region     char(6) NOT NULL,
    temperature_tenths smallint NOT NULL,
    symptoms           text[] NOT NULL,
    contact_with_case  boolean NOT NULL,
    contact_date       date,
    travelled_regions  text[] NOT NULL,
    commitment         boolean NOT NULL,
    submitted_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    superseded_at      timestamptz,
    idempotency_key    text,
    CONSTRAINT declarations_idempotency_key UNIQUE (person_id, idempotency_key)
);
CREATE UNIQUE INDEX declarations_current_per_day ON declarations (person_id, day) WHERE superseded_at IS NULL;
CREATE INDEX declarations_history_idx ON declarations (person_id, submitted_at DESC, id DESC);

-- Official facts, keyed by the platform-wide blind index of the ID number (never the number itself), so facts for
-- people who have not registered yet are kept. The unique keys make a resent row a duplicate, not a second fact.
CREATE TABLE nat_results (
    id_index    bytea NOT NULL,
    sample_time timestamptz NOT NULL,
    positive    boolean NOT NULL,
    lab         text NOT NULL,
    imported_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT nat_results_key UNIQUE (id_index, sample_time, lab)
);

CREATE TABLE case_status (
    id_index    bytea NOT NULL,
    status      text NOT NULL,
    since       date NOT NULL,
    until       date,
    imported_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT case_status_key UNIQUE (id_index, status, since)
);

CREATE TABLE visits (
    id_index    bytea NOT NULL,
    region      char(6) NOT NULL,
    first_seen  timestamptz NOT NULL,
    last_seen   timestamptz NOT NULL,
    source      text NOT NULL,
    imported_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT visits_key UNIQUE (id_index, region, first_seen, source)
);

-- Import batches, per client and client-chosen batch id. committed_through is the last row number whose chunk
-- committed: a resend after a crash resumes after it.
CREATE TABLE import_batches (
    client_id         text NOT NULL,
    batch_id          text NOT NULL,
    kind              text NOT NULL,
    state             text NOT NULL,
    rows_read         bigint NOT NULL DEFAULT 0,
    accepted          bigint NOT NULL DEFAULT 0,
    rejected          bigint NOT NULL DEFAULT 0,
    duplicates        bigint NOT NULL DEFAULT 0,
    committed_through bigint NOT NULL DEFAULT 0,
    started_at        timestamptz NOT NULL DEFAULT now(),
    finished_at       timestamptz,
    PRIMARY KEY (client_id, batch_id)
);

CREATE TABLE import_errors (
    client_id text NOT NULL,
    batch_id  text NOT NULL,
    row_no    bigint NOT NULL,
    field     text NOT NULL,
    reason    text NOT NULL,
    PRIMARY KEY (client_id, batch_id, row_no)
);

-- The person behind a blind index, learnt from identity's person.registered events.
CREATE TABLE person_links (
    id_index  bytea PRIMARY KEY,
    person_id uuid NOT NULL UNIQUE,
    linked_at timestamptz NOT NULL DEFAULT now()
);

-- Transactional outbox (hc_platform::outbox).
CREATE TABLE outbox (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream       text NOT NULL,
    payload      jsonb NOT NULL,
    traceparent  text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX outbox_unpublished_idx ON outbox (id) WHERE published_at IS NULL;
