-- EU Digital COVID Certificates' document signer certificates (X.509, DER) this platform's gates trust, replaced
-- whole by PUT /v1/trust/dcc-signers (as a gateway's download is). `kid` is the first 8 bytes of the certificate's
-- SHA-256, which several certificates may share.
CREATE TABLE dcc_signers (
    der      bytea PRIMARY KEY,
    kid      bytea NOT NULL,
    added_by text NOT NULL,
    added_at timestamptz NOT NULL DEFAULT now()
);
