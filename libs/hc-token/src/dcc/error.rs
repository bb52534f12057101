//! Why an EU DCC is refused: one variant per step, with a stable name for answers, metrics and the test runner.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum DccError {
    #[error("the code does not start with HC1:")]
    BadPrefix,
    #[error("the code is longer than {} characters", super::MAX_CODE_LEN)]
    TooLong,
    #[error("the code is not valid base45")]
    BadBase45,
    #[error(
        "the code is not a zlib stream, or inflates past {} bytes",
        super::MAX_INFLATED
    )]
    BadCompression,
    #[error("the code is not a COSE_Sign1 structure: {0}")]
    BadCose(String),
    #[error(
        "the code is signed with {0} (ES256 on a P-256 or P-384 key, and PS256 on an RSA key, are accepted)"
    )]
    WrongAlgorithm(String),
    #[error("no trusted document signer has the key id {0}")]
    UnknownKid(String),
    #[error("the signature does not verify")]
    BadSignature,
    #[error("the claims are not those of a health certificate: {0}")]
    BadClaims(String),
    #[error("the certificate was issued after the time it is checked at")]
    NotYetValid,
    #[error("the certificate has expired")]
    Expired,
    #[error("the certificate's issue or expiry lies outside its signer's validity")]
    SignerNotValid,
    #[error("the signer may not sign {0} certificates")]
    KeyUsage(&'static str),
    #[error("the document signer certificate is unusable: {0}")]
    BadSignerCertificate(String),
    #[error("the payload is not a DCC of a known schema: {0}")]
    BadCertificate(String),
}

impl DccError {
    /// A stable machine-readable name.
    pub fn code(&self) -> &'static str {
        self.into()
    }
}
