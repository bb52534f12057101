//! EU Digital COVID Certificates (`HC1:`), as an arrival from abroad shows them: the code is `HC1:` + base45 of the
//! zlib-compressed COSE_Sign1 (ES256 or PS256) over CWT claims whose claim -260 holds the certificate. Signed by a
//! document signer certificate (X.509) found by `kid`, the first 8 bytes of the SHA-256 of the certificate.
//! Specifications: the eHealth Network's "Electronic Health Certificate Container Format" (hcert) and the DCC JSON
//! schema. Each step is a function of its own so the official test cases (`hc-verify dcc-testcase`) can run each
//! one alone; [`verify`] runs them all in order.

mod certificate;
mod codec;
mod error;
mod signers;
mod verify;

pub use certificate::{Certificate, CertificateType, Name};
pub use codec::{
    DccClaims, claims, cose, decode_base45, dgc_of_cwt, inflate, strict_cbor, to_json, unprefix,
};
pub use error::DccError;
pub use signers::{Signer, SignerKey, Signers, kid_of_certificate};
pub use verify::{
    Verified, check_expiry, check_expiry_within, check_key_usage, kid, verify, verify_signature,
};

/// What every EU DCC code starts with (hcert §3.3: the context identifier).
pub const PREFIX: &str = "HC1:";

/// The longest code accepted: the official test cases go up to 1,093 characters (an RSA-3072 signer); a QR code of
/// version 40 at quartile correction holds under 2,000 alphanumerics.
pub const MAX_CODE_LEN: usize = 4096;

/// The most a code may inflate to: a decompression bomb is refused after this many bytes, not after memory runs out.
pub const MAX_INFLATED: u64 = 64 * 1024;
