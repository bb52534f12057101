-- The fact exchange (docs/interop.md). Who lives where, by national blind index only: the one thing the hub must
-- know to route a fact to a person's home region and nowhere else.
CREATE TABLE residents (
    national_index bytea PRIMARY KEY,
    region         char(6) NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Facts waiting for their home region to fetch them; a fetch acknowledges (and deletes) everything before its
-- cursor.
CREATE TABLE inbox (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    home           char(6) NOT NULL,
    national_index bytea NOT NULL,
    source         char(6) NOT NULL,
    fact           jsonb NOT NULL,
    received_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX inbox_home_idx ON inbox (home, id);

-- Facts about someone no region has claimed yet (their home platform has not announced them, or joins later), kept
-- hub.unrouted_days and routed when a region claims the index.
CREATE TABLE unrouted (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    national_index bytea NOT NULL,
    source         char(6) NOT NULL,
    fact           jsonb NOT NULL,
    received_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX unrouted_index_idx ON unrouted (national_index);
CREATE INDEX unrouted_received_idx ON unrouted (received_at);
