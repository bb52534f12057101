//! Why a code was refused (typed, so a checkpoint can say which), and why a token or key could not be made.

/// Why a code does not decode or verify. Decoding never panics: every input ends in a value or one of these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
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
        match self {
            DecodeError::BadPrefix => "bad_prefix",
            DecodeError::BadBase45 => "bad_base45",
            DecodeError::BadCbor(_) => "bad_cbor",
            DecodeError::WrongAlgorithm(_) => "wrong_algorithm",
            DecodeError::UnknownKeyId(_) => "unknown_key_id",
            DecodeError::BadSignature => "bad_signature",
            DecodeError::IssuerMismatch { .. } => "issuer_mismatch",
            DecodeError::KeyNotValid(_) => "key_not_valid",
            DecodeError::BadClaims(_) => "bad_claims",
            DecodeError::Expired(_) => "expired",
            DecodeError::NotYetValid(_) => "not_yet_valid",
        }
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
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrustListError {
    #[error("the format is {0:?}, not hc-trust-list/1")]
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
        match self {
            TrustListError::BadFormat(_) => "bad_format",
            TrustListError::BadEncoding => "bad_encoding",
            TrustListError::BadCbor(_) => "bad_cbor",
            TrustListError::WrongAlgorithm => "wrong_algorithm",
            TrustListError::WrongKey { .. } => "wrong_key",
            TrustListError::BadSignature => "bad_signature",
            TrustListError::BadPayload(_) => "bad_payload",
            TrustListError::WrongSigner { .. } => "wrong_signer",
            TrustListError::Expired(_) => "expired",
        }
    }
}
