-- The five-colour county map and the control and flow indices (docs/indices.md).

-- An official's audited override of a county's level, in force from set_at until `until` or until lifted.
CREATE TABLE county_overrides (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    region    char(6) NOT NULL,
    level     text NOT NULL CHECK (level IN ('green', 'blue', 'yellow', 'orange', 'red')),
    reason    text NOT NULL,
    set_by    text NOT NULL,
    set_at    timestamptz NOT NULL DEFAULT now(),
    until     timestamptz NOT NULL,
    lifted_by text,
    lifted_at timestamptz
);
CREATE INDEX county_overrides_region_idx ON county_overrides (region, id DESC);

-- Every change of a county's level: what the published rules gave (`derived`), what is shown (`level`: the
-- override's when one is in force), why, and the inputs the rules read. A county with no row is green.
CREATE TABLE county_levels (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    region      char(6) NOT NULL,
    level       text NOT NULL CHECK (level IN ('green', 'blue', 'yellow', 'orange', 'red')),
    derived     text NOT NULL CHECK (derived IN ('green', 'blue', 'yellow', 'orange', 'red')),
    override_id bigint REFERENCES county_overrides (id),
    reasons     jsonb NOT NULL,
    inputs      jsonb NOT NULL,
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX county_levels_region_idx ON county_levels (region, id DESC);

-- What the map and the indices read by time: visits ending on or after a day's start, positive samples and case
-- entries of the last weeks.
CREATE INDEX f_visits_last_seen_idx ON f_visits (last_seen);
CREATE INDEX f_nat_positive_idx ON f_nat (sample_time) WHERE positive;
CREATE INDEX f_cases_since_idx ON f_cases (since);

-- The indices of each county and day (China time), with every input, so anyone can recompute them. Null when no
-- component had data.
CREATE TABLE county_indices (
    region      char(6) NOT NULL,
    day         date NOT NULL,
    control     double precision,
    flow        double precision,
    inputs      jsonb NOT NULL,
    computed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (region, day)
);

-- Grows with every change of the map or the indices: each replica rebuilds its copy of the public map when it moves
-- (checked at most once a second), and it is the map's ETag.
CREATE TABLE county_map_generation (
    only_row   boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    generation bigint NOT NULL
);
INSERT INTO county_map_generation VALUES (true, 0);
