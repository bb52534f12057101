-- A per-person digest of the facts (their JSON, within the lookback when built), so that a bulk recolouring reads
-- one row per person instead of joining every fact table. It is a cache: `facts_version` grows whenever a fact of
-- the person is stored, and the digest counts only while `digest_version` equals it. Whoever evaluates a person
-- from the fact tables writes the digest back, on condition that the version has not moved meanwhile.
ALTER TABLE subjects
    ADD COLUMN facts_version  bigint NOT NULL DEFAULT 0,
    ADD COLUMN digest_version bigint,
    ADD COLUMN digest         text;
-- Room on each page for the updates (versions and digests) to stay HOT: no index covers these columns.
ALTER TABLE subjects SET (fillfactor = 80);
