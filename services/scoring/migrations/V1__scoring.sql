-- Scoring's own projection of the facts, fed only by events (person.registered, declaration.submitted,
-- facts.imported). Every fact is keyed by the platform-wide blind index of the ID number; `subjects` links an index
-- to the registered person, whose status is the output.
CREATE TABLE subjects (
    id_index    bytea PRIMARY KEY,
    person_id   uuid NOT NULL UNIQUE,
    home_region char(6) NOT NULL,
    linked_at   timestamptz NOT NULL DEFAULT now()
);

-- The current declaration per person and day (a superseding one replaces it).
CREATE TABLE f_declarations (
    id_index       bytea NOT NULL,
    day            date NOT NULL,
    declaration_id uuid NOT NULL,
    fever          boolean NOT NULL,
    symptoms       boolean NOT NULL,
    contact_date   date,
    PRIMARY KEY (id_index, day)
);

CREATE TABLE f_cases (
    id_index bytea NOT NULL,
    status   text NOT NULL,
    since    date NOT NULL,
    until    date,
    CONSTRAINT f_cases_key UNIQUE (id_index, status, since)
);

CREATE TABLE f_nat (
    id_index    bytea NOT NULL,
    sample_time timestamptz NOT NULL,
    positive    boolean NOT NULL,
    lab         text NOT NULL,
    CONSTRAINT f_nat_key UNIQUE (id_index, sample_time, lab)
);

-- Visits from carriers and venues, and the regions a person declared (source 'declared').
CREATE TABLE f_visits (
    id_index   bytea NOT NULL,
    region     char(6) NOT NULL,
    first_seen timestamptz NOT NULL,
    last_seen  timestamptz NOT NULL,
    source     text NOT NULL,
    CONSTRAINT f_visits_key UNIQUE (id_index, region, first_seen, source)
);
-- The recolouring query: who was in region R since T.
CREATE INDEX f_visits_region_idx ON f_visits (region, last_seen);

-- Region risk levels: every change, each with the time it takes effect. A region's level is that of its latest
-- change in effect, so a change announced for later leaves the current level until then. `recoloured_at` is set
-- once everyone seen there has been recoloured under the change (at once, or by the scheduler when it comes).
CREATE TABLE region_risk (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    region         char(6) NOT NULL,
    level          text NOT NULL CHECK (level IN ('low', 'medium', 'high')),
    effective_from timestamptz NOT NULL,
    updated_by     text NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    recoloured_at  timestamptz
);
CREATE INDEX region_risk_current_idx ON region_risk (region, effective_from DESC, id DESC);
CREATE INDEX region_risk_pending_idx ON region_risk (id) WHERE recoloured_at IS NULL;

-- Versioned rule sets per region. `activated_at` is set once the version is in force (immediately, or by the
-- scheduler at effective_from) and everyone it governs has been recoloured under it.
CREATE TABLE rule_sets (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    region         char(6) NOT NULL,
    version        integer NOT NULL,
    document       jsonb NOT NULL,
    effective_from timestamptz NOT NULL,
    created_by     text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    activated_at   timestamptz,
    CONSTRAINT rule_sets_version UNIQUE (region, version)
);

-- The current status per person. `version` increases on every change; `evaluated_at` moves on every evaluation
-- and is what a bulk recolouring checks before it writes (optimistic concurrency: a row evaluated again since it
-- was read is left to the newer evaluation). `recheck_at` is when time alone may change the status; it is not
-- indexed, so that rewriting a status is a HOT update (the scheduler finds due rows with a sequential scan).
CREATE TABLE status (
    person_id    uuid PRIMARY KEY,
    colour       text NOT NULL,
    variant      text NOT NULL,
    -- JSON arrays, kept as text: always read and written whole, and text is compared and stored without parsing
    -- (a bulk recolouring writes hundreds of thousands).
    reasons      text NOT NULL,
    requirements text NOT NULL,
    valid_until  timestamptz,
    rule_set     text NOT NULL,
    -- The latest negative test: the code token carries it, and venues admit on it.
    negative_test_at timestamptz,
    -- Set while an accepted appeal's override is in force.
    override_appeal uuid,
    version      bigint NOT NULL,
    computed_at  timestamptz NOT NULL,
    evaluated_at timestamptz NOT NULL,
    -- Which rules and risk levels it was evaluated under (a number that grows with every change of either): an
    -- evaluation under older ones never overwrites it.
    basis        bigint NOT NULL,
    recheck_at   timestamptz NOT NULL
) WITH (fillfactor = 70);

-- Appeals (GB/T 38963's correction). An accepted appeal carries the override colour and its expiry; it is the
-- only way a colour is set by hand.
CREATE TABLE appeals (
    id              uuid PRIMARY KEY,
    person_id       uuid NOT NULL,
    reason          text NOT NULL,
    colour_at_filing text NOT NULL,
    state           text NOT NULL CHECK (state IN ('open', 'accepted', 'rejected')),
    filed_at        timestamptz NOT NULL DEFAULT now(),
    idempotency_key text,
    resolved_by     text,
    resolved_at     timestamptz,
    resolution      text,
    override_colour text,
    override_until  timestamptz,
    CONSTRAINT appeals_idempotency UNIQUE (person_id, idempotency_key)
);
CREATE INDEX appeals_open_idx ON appeals (filed_at, id) WHERE state = 'open';
CREATE INDEX appeals_override_idx ON appeals (person_id, override_until) WHERE state = 'accepted';

-- Employers' staff lists: the return-to-work check shows colours of these people only.
CREATE TABLE staff (
    employer_id text NOT NULL,
    id_index    bytea NOT NULL,
    label       text NOT NULL,
    added_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (employer_id, id_index),
    -- The colour list pages by label.
    CONSTRAINT staff_label UNIQUE (employer_id, label)
);

-- Every read of a person's status by an official and every override.
CREATE TABLE audit_log (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT now(),
    actor     text NOT NULL,
    action    text NOT NULL,
    subject   uuid,
    reason    text,
    outcome   text NOT NULL
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
