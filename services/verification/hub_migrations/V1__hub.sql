-- The national trust hub: each region's signed trust list as it last uploaded it (verified against the region's
-- registered root before it is stored, and again whenever the national list is made from it).
CREATE TABLE region_lists (
    region      char(6) PRIMARY KEY,
    signed      text NOT NULL,
    sequence    bigint NOT NULL,
    expires_at  timestamptz NOT NULL,
    uploaded_at timestamptz NOT NULL DEFAULT now()
);
