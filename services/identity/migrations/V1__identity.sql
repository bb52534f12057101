-- Persons: personal data only as AES-256-GCM ciphertext (key id beside it) and HMAC blind indexes.
CREATE TABLE persons (
    id              uuid PRIMARY KEY,
    id_number_index bytea NOT NULL,
    phone_index     bytea NOT NULL,
    name_ct         bytea NOT NULL,
    id_number_ct    bytea NOT NULL,
    phone_ct        bytea NOT NULL,
    data_key_id     text NOT NULL,
    home_region     char(6) NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT persons_id_number_index_key UNIQUE (id_number_index),
    CONSTRAINT persons_phone_index_key UNIQUE (phone_index)
);

-- Official API clients. Only a SHA-256 of the secret is kept.
CREATE TABLE api_clients (
    id              uuid PRIMARY KEY,
    name            text NOT NULL,
    secret_hash     bytea NOT NULL,
    scopes          text[] NOT NULL,
    region          char(6),
    idempotency_key text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    revoked_at      timestamptz,
    CONSTRAINT api_clients_idempotency_key_key UNIQUE (idempotency_key)
);

-- Refresh tokens rotate within a family; presenting a rotated one revokes the family.
CREATE TABLE refresh_tokens (
    token_hash  bytea PRIMARY KEY,
    family_id   uuid NOT NULL,
    person_id   uuid NOT NULL REFERENCES persons (id),
    issued_at   timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    rotated_at  timestamptz,
    revoked_at  timestamptz
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);

-- Every read of personal data by an official client: who, what, when, why, and the outcome.
CREATE TABLE audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL,
    action      text NOT NULL,
    subject     uuid,
    reason      text NOT NULL,
    outcome     text NOT NULL
);
CREATE INDEX audit_log_subject_idx ON audit_log (subject, at);
