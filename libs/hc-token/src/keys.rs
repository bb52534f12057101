//! Signing keys (Ed25519, from a 32-byte seed kept in config or a secret) and the verifying keys a checkpoint
//! trusts, each with its key id, its issuer and the time it signs until (after a rotation, codes it signed before
//! still verify until they expire).

use std::collections::HashMap;

use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use serde::{Deserialize, Serialize};

use crate::error::KeyError;

fn check_kid(kid: &str) -> Result<(), KeyError> {
    if (1..=16).contains(&kid.len()) && kid.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(())
    } else {
        Err(KeyError::KeyId(kid.to_owned()))
    }
}

fn check_issuer(issuer: &str) -> Result<(), KeyError> {
    if issuer.len() == 6 && issuer.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(KeyError::Issuer(issuer.to_owned()))
    }
}

/// A key this platform signs with.
pub struct SigningKey {
    kid: String,
    issuer: String,
    pair: Ed25519KeyPair,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the seed.
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    pub fn from_seed(issuer: &str, kid: &str, seed: &[u8]) -> Result<Self, KeyError> {
        check_kid(kid)?;
        check_issuer(issuer)?;
        if seed.len() != 32 {
            return Err(KeyError::SeedLength(seed.len()));
        }
        let pair = Ed25519KeyPair::from_seed_unchecked(seed).map_err(|_| KeyError::Rejected)?;
        Ok(Self {
            kid: kid.to_owned(),
            issuer: issuer.to_owned(),
            pair,
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub(crate) fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.pair.sign(message).as_ref().to_vec()
    }

    /// Its public half, for the trust list (signing from now on, until retired).
    pub fn verifying_key(&self) -> VerifyingKey {
        let mut public = [0u8; 32];
        public.copy_from_slice(self.pair.public_key().as_ref());
        VerifyingKey {
            issuer: self.issuer.clone(),
            kid: self.kid.clone(),
            public,
            signs_until: None,
        }
    }
}

/// A public key a verifier trusts for one issuer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyingKey {
    pub issuer: String,
    pub kid: String,
    /// The raw 32-byte Ed25519 public key.
    pub public: [u8; 32],
    /// Retired keys: codes issued after this (Unix seconds) are refused; codes issued before verify until they
    /// expire.
    pub signs_until: Option<i64>,
}

impl VerifyingKey {
    pub fn new(
        issuer: &str,
        kid: &str,
        public: &[u8],
        signs_until: Option<i64>,
    ) -> Result<Self, KeyError> {
        check_kid(kid)?;
        check_issuer(issuer)?;
        let public: [u8; 32] = public
            .try_into()
            .map_err(|_| KeyError::PublicKeyLength(public.len()))?;
        Ok(Self {
            issuer: issuer.to_owned(),
            kid: kid.to_owned(),
            public,
            signs_until,
        })
    }

    pub(crate) fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ED25519, &self.public)
            .verify(message, signature)
            .is_ok()
    }
}

/// Where a verifier finds the keys that go by an id. Key ids are unique per issuer, not across issuers: two regions may
/// use the same one, and a verifier tries each key under it (the signature tells which one signed).
pub trait Keys {
    fn find(&self, kid: &[u8]) -> &[VerifyingKey];
}

/// The keys a verifier trusts, by key id.
#[derive(Debug, Clone, Default)]
pub struct TrustStore {
    keys: HashMap<Vec<u8>, Vec<VerifyingKey>>,
}

impl TrustStore {
    /// The keys; a second key of the same issuer and id is left out (the first stands).
    pub fn new(keys: impl IntoIterator<Item = VerifyingKey>) -> Self {
        let mut by_kid: HashMap<Vec<u8>, Vec<VerifyingKey>> = HashMap::new();
        for key in keys {
            let same = by_kid.entry(key.kid.as_bytes().to_vec()).or_default();
            if !same.iter().any(|k| k.issuer == key.issuer) {
                same.push(key);
            }
        }
        Self { keys: by_kid }
    }

    pub fn keys(&self) -> impl Iterator<Item = &VerifyingKey> {
        self.keys.values().flatten()
    }
}

impl Keys for TrustStore {
    fn find(&self, kid: &[u8]) -> &[VerifyingKey] {
        self.keys.get(kid).map_or(&[], Vec::as_slice)
    }
}
