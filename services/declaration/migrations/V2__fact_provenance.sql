-- Where each fact came from: the client and the batch that first sent it, and the region it arose in (where the
-- sample was taken, the case reported, the stay made). A regional client's facts must arise within its region.
-- Facts imported before this migration have none of the three.
ALTER TABLE nat_results ADD COLUMN region char(6), ADD COLUMN client_id text, ADD COLUMN batch_id text;
ALTER TABLE case_status ADD COLUMN region char(6), ADD COLUMN client_id text, ADD COLUMN batch_id text;
ALTER TABLE visits ADD COLUMN client_id text, ADD COLUMN batch_id text;

-- An official's change to a fact already stored (an import never changes one): who, why, before and after.
CREATE TABLE fact_corrections (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind         text NOT NULL,
    id_index     bytea NOT NULL,
    before       jsonb NOT NULL,
    after        jsonb NOT NULL,
    client_id    text NOT NULL,
    reason       text NOT NULL,
    corrected_at timestamptz NOT NULL DEFAULT now()
);
