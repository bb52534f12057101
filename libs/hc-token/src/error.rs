//! Why a code was refused (typed, so a checkpoint can say which), and why a token or key could not be made.

/// Why a code does not decode or verify. Decoding never panics: every input ends in a value or one of these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum DecodeError {
    #[error("the code does not start with HCQ1:")]
    BadPrefix,
    #[error("the code is not valid base45")]
    BadBase45,
    #[error("the code is not a tagged COSE_Sign1 structure: {0}")]
    BadCbor(String),
    #[error("the code is signed with {0}; only EdDSA (Ed25519) is accepted")]
    WrongAlgorithm(String),
    #[error("no trusted key has the id {0:?}")]
    UnknownKeyId(String),
    #[error("the signature does not verify")]
    BadSignature,
    #[error("the key {kid:?} belongs to issuer {key_issuer}, but the code claims issuer {claimed}")]
    IssuerMismatch {
        kid: String,
        key_issuer: String,
        claimed: String,
    },
    #[error("the key {0:?} was not signing codes when this one was issued")]
    KeyNotValid(String),
    #[error("the claims are not those of a health code: {0}")]
    BadClaims(String),
    #[error("the code expired at {0} (Unix seconds)")]
    Expired(i64),
    #[error("the code is valid only from {0} (Unix seconds)")]
    NotYetValid(i64),
}

impl DecodeError {
    /// A stable machine-readable name (for problem+json, metrics and checkpoint screens).
    pub fn code(&self) -> &'static str {
        self.into()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("claims cannot be encoded: {0}")]
    Claims(String),
    #[error("the token cannot be serialised: {0}")]
    Cose(String),
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("a key id is 1 to 16 printable ASCII characters, got {0:?}")]
    KeyId(String),
    #[error("an issuer is a six-digit region code, got {0:?}")]
    Issuer(String),
    #[error("an Ed25519 seed is 32 bytes, got {0}")]
    SeedLength(usize),
    #[error("an Ed25519 public key is 32 bytes, got {0}")]
    PublicKeyLength(usize),
    #[error("the key was refused by the crypto library")]
    Rejected,
    #[error("a pseudonym key is 32 bytes, got {0}")]
    PseudonymKeyLength(usize),
    #[error("pseudonym key entry {0} is not number:base64-key")]
    PseudonymSpec(usize),
    #[error("no pseudonym key is set")]
    NoPseudonymKey,
}

/// Why a signed trust list is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum TrustListError {
    #[error("the format is {0:?}, not hc-trust-list/1 (a trust list) or hc-signed/1 (a message)")]
    BadFormat(String),
    #[error("`signed` is not base64url")]
    BadEncoding,
    #[error("`signed` is not a tagged COSE_Sign1 structure: {0}")]
    BadCbor(String),
    #[error("the list is not signed with EdDSA (Ed25519)")]
    WrongAlgorithm,
    #[error("the list is signed with key {found:?}, but the pinned root key is {expected:?}")]
    WrongKey { expected: String, found: String },
    #[error("the signature does not verify with the pinned root key")]
    BadSignature,
    #[error("the list's content is invalid: {0}")]
    BadPayload(String),
    #[error("the list is signed by region {found}, but the pinned root belongs to {expected}")]
    WrongSigner { expected: String, found: String },
    #[error("the list expired at {0} (Unix seconds)")]
    Expired(i64),
}

impl TrustListError {
    /// A stable machine-readable name.
    pub fn code(&self) -> &'static str {
        self.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The codes are an interface (problem+json, metrics, checkpoint screens): strum's names must stay these.
    #[test]
    fn the_codes_are_the_published_names() {
        let decode = [
            (DecodeError::BadPrefix, "bad_prefix"),
            (DecodeError::BadBase45, "bad_base45"),
            (DecodeError::BadCbor(String::new()), "bad_cbor"),
            (
                DecodeError::WrongAlgorithm(String::new()),
                "wrong_algorithm",
            ),
            (DecodeError::UnknownKeyId(String::new()), "unknown_key_id"),
            (DecodeError::BadSignature, "bad_signature"),
            (
                DecodeError::IssuerMismatch {
                    kid: String::new(),
                    key_issuer: String::new(),
                    claimed: String::new(),
                },
                "issuer_mismatch",
            ),
            (DecodeError::KeyNotValid(String::new()), "key_not_valid"),
            (DecodeError::BadClaims(String::new()), "bad_claims"),
            (DecodeError::Expired(0), "expired"),
            (DecodeError::NotYetValid(0), "not_yet_valid"),
        ];
        for (error, code) in decode {
            assert_eq!(error.code(), code);
        }
        let trust = [
            (TrustListError::BadFormat(String::new()), "bad_format"),
            (TrustListError::BadEncoding, "bad_encoding"),
            (TrustListError::BadCbor(String::new()), "bad_cbor"),
            (TrustListError::WrongAlgorithm, "wrong_algorithm"),
            (
                TrustListError::WrongKey {
                    expected: String::new(),
                    found: String::new(),
                },
                "wrong_key",
            ),
            (TrustListError::BadSignature, "bad_signature"),
            (TrustListError::BadPayload(String::new()), "bad_payload"),
            (
                TrustListError::WrongSigner {
                    expected: String::new(),
                    found: String::new(),
                },
                "wrong_signer",
            ),
            (TrustListError::Expired(0), "expired"),
        ];
        for (error, code) in trust {
            assert_eq!(error.code(), code);
        }
    }
}
