-- A client's idempotency key is its creator's own: one admin's key never returns another admin's client.
ALTER TABLE api_clients ADD COLUMN created_by text;
ALTER TABLE api_clients DROP CONSTRAINT api_clients_idempotency_key_key;
ALTER TABLE api_clients ADD CONSTRAINT api_clients_creator_idempotency_key UNIQUE (created_by, idempotency_key);
