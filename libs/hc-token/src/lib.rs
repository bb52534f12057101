//! The code token a citizen shows and a checkpoint verifies (docs/token-format.md is the normative spec): a
//! COSE_Sign1 (RFC 9052) over CWT claims (RFC 8392), signed with Ed25519, CBOR-encoded, base45-encoded (RFC 9285)
//! behind the prefix `HCQ1:`. COSE and CWT come from `coset`, CBOR from `ciborium`, base45 from `base45`, Ed25519 and
//! AES-GCM from `aws-lc-rs`; nothing here encodes or signs by hand.

mod claims;
mod codec;
pub mod dcc;
mod error;
mod keys;
mod pseudonym;
mod trust_list;

pub use claims::{CodeClaims, Flags, HCQ_CLAIM};
pub use codec::{Validation, decode, encode, inspect};
pub use error::{DecodeError, EncodeError, KeyError, TrustListError};
pub use keys::{Keys, SigningKey, TrustStore, VerifyingKey};
pub use pseudonym::{PSEUDONYM_LEN, Pseudonyms};
pub use trust_list::{
    ListedKey, SIGNED_MESSAGE_FORMAT, SignedMessage, SignedTrustList, TRUST_LIST_FORMAT, TrustList,
    TrustedIssuer, pinned_root,
};

/// What every code starts with.
pub const PREFIX: &str = "HCQ1:";
