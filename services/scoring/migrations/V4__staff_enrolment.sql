-- An employer is a client bound to a region, and a person on its list is shown to it only after accepting the
-- employer (issue 16): pending until then, withdrawn by the person at any time. Lists from before this migration
-- are pending: their people have not accepted.
ALTER TABLE staff
    ADD COLUMN employer_name   text NOT NULL DEFAULT '',
    ADD COLUMN employer_region char(6),
    ADD COLUMN accepted_at     timestamptz;
-- A person's own view: who listed them.
CREATE INDEX staff_by_person ON staff (id_index);
