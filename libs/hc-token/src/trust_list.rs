//! The signed trust list (docs/token-format.md §9): the issuers a platform accepts codes from, with their public
//! keys, signed by the platform's root key. Other regions import it against that root key, pinned in advance, and a
//! checkpoint device holding it verifies codes offline. It is a COSE_Sign1 (Ed25519) whose payload is the JSON list,
//! carried in base64url; COSE from `coset`, nothing signed by hand.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use coset::iana;
use coset::{Algorithm, CoseSign1, CoseSign1Builder, HeaderBuilder, TaggedCborSerializable};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{EncodeError, TrustListError};
use crate::keys::{SigningKey, TrustStore, VerifyingKey};

/// What `format` says in every serialised list.
pub const TRUST_LIST_FORMAT: &str = "hc-trust-list/1";

/// The list itself (the signed payload).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustList {
    /// The region whose root key signs this list.
    pub signer: String,
    /// Grows with every new list of this signer: a peer refuses a list older than the one it holds.
    pub sequence: u64,
    pub issued_at: i64,
    /// Unix seconds after which the list must not be used; a device fetches a newer one before then.
    pub expires_at: i64,
    pub issuers: Vec<TrustedIssuer>,
}

/// One issuer the signer accepts codes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustedIssuer {
    /// The issuer's six-digit region code: the `iss` of its codes.
    pub region: String,
    pub keys: Vec<ListedKey>,
    /// How the issuer's colours read on the national scale (`green`, `yellow`, `orange`, `red`), as the national
    /// trust list carries it; absent: the same colours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub colours: Option<std::collections::BTreeMap<String, String>>,
}

/// A code-signing key, as on `GET /v1/trust/keys` (an OKP JWK's `kid` and `x`, with `signs_until`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListedKey {
    pub kid: String,
    /// The raw 32-byte Ed25519 public key, base64url without padding.
    pub x: String,
    pub signs_until: Option<i64>,
}

impl ListedKey {
    pub fn of(key: &VerifyingKey) -> Self {
        Self {
            kid: key.kid.clone(),
            x: URL_SAFE_NO_PAD.encode(key.public),
            signs_until: key.signs_until,
        }
    }

    pub fn verifying_key(&self, issuer: &str) -> Result<VerifyingKey, TrustListError> {
        let public = URL_SAFE_NO_PAD.decode(&self.x).map_err(|_| {
            TrustListError::BadPayload(format!("key {} is not base64url", self.kid))
        })?;
        VerifyingKey::new(issuer, &self.kid, &public, self.signs_until)
            .map_err(|e| TrustListError::BadPayload(e.to_string()))
    }
}

/// A root key as a verifier pins it: `region=kid:base64url-public-key` (settings, command lines).
pub fn pinned_root(spec: &str) -> Option<VerifyingKey> {
    let (region, key) = spec.trim().split_once('=')?;
    let (kid, public) = key.split_once(':')?;
    let public = URL_SAFE_NO_PAD.decode(public).ok()?;
    VerifyingKey::new(region, kid, &public, None).ok()
}

/// The file and wire form: `{"format": "hc-trust-list/1", "signed": "<base64url of the COSE_Sign1>"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedTrustList {
    pub format: String,
    pub signed: String,
}

impl TrustList {
    /// Signs the list with the root key.
    pub fn sign(&self, root: &SigningKey) -> Result<SignedTrustList, EncodeError> {
        Ok(SignedTrustList {
            format: TRUST_LIST_FORMAT.into(),
            signed: sign_json(self, root)?,
        })
    }

    /// Every key of every issuer on the list, for [`crate::decode`]. Fails on a key id that two keys of one issuer
    /// share (issuers may share ids).
    pub fn trust_store(&self) -> Result<TrustStore, TrustListError> {
        let mut keys = Vec::new();
        for issuer in &self.issuers {
            for key in &issuer.keys {
                keys.push(key.verifying_key(&issuer.region)?);
            }
        }
        let count = keys.len();
        let store = TrustStore::new(keys);
        if store.keys().count() != count {
            return Err(TrustListError::BadPayload(
                "two keys of one issuer share a key id".into(),
            ));
        }
        Ok(store)
    }
}

impl SignedTrustList {
    /// Verifies the list against the pinned root key of `root.issuer` and returns it. Checks, in order: format,
    /// base64url, COSE_Sign1, EdDSA, the root's key id, the signature, the JSON payload, that the root's region
    /// signed it, and that it has not expired at `now`.
    pub fn verify(&self, root: &VerifyingKey, now: i64) -> Result<TrustList, TrustListError> {
        if self.format != TRUST_LIST_FORMAT {
            return Err(TrustListError::BadFormat(self.format.clone()));
        }
        let list: TrustList = open_json(&self.signed, root)?;
        if list.signer != root.issuer {
            return Err(TrustListError::WrongSigner {
                expected: root.issuer.clone(),
                found: list.signer,
            });
        }
        if list.expires_at <= now {
            return Err(TrustListError::Expired(list.expires_at));
        }
        list.trust_store()?;
        Ok(list)
    }
}

/// Signs a value's JSON with an Ed25519 key (its id in the protected header): base64url of the COSE_Sign1.
fn sign_json<T: Serialize>(value: &T, key: &SigningKey) -> Result<String, EncodeError> {
    let payload = serde_json::to_vec(value).map_err(|e| EncodeError::Claims(e.to_string()))?;
    let protected = HeaderBuilder::new()
        .algorithm(iana::Algorithm::EdDSA)
        .key_id(key.kid().as_bytes().to_vec())
        .content_type("application/json".into())
        .build();
    let sign1 = CoseSign1Builder::new()
        .protected(protected)
        .payload(payload)
        .create_signature(&[], |data| key.sign(data))
        .build();
    let bytes = sign1
        .to_tagged_vec()
        .map_err(|e| EncodeError::Cose(e.to_string()))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// Checks, in order: base64url, COSE_Sign1, EdDSA, the key's id, the signature; then reads the JSON payload.
fn open_json<T: DeserializeOwned>(signed: &str, key: &VerifyingKey) -> Result<T, TrustListError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(signed.trim())
        .map_err(|_| TrustListError::BadEncoding)?;
    let sign1 =
        CoseSign1::from_tagged_slice(&bytes).map_err(|e| TrustListError::BadCbor(e.to_string()))?;
    let header = &sign1.protected.header;
    if header.alg != Some(Algorithm::Assigned(iana::Algorithm::EdDSA)) {
        return Err(TrustListError::WrongAlgorithm);
    }
    if header.key_id != key.kid.as_bytes() {
        return Err(TrustListError::WrongKey {
            expected: key.kid.clone(),
            found: String::from_utf8_lossy(&header.key_id).into_owned(),
        });
    }
    sign1.verify_signature(&[], |signature, data| {
        if key.verifies(data, signature) {
            Ok(())
        } else {
            Err(TrustListError::BadSignature)
        }
    })?;
    let payload = sign1
        .payload
        .ok_or_else(|| TrustListError::BadPayload("no payload".into()))?;
    serde_json::from_slice(&payload).map_err(|e| TrustListError::BadPayload(e.to_string()))
}

/// What `format` says in a signed message between a platform and the national hub.
pub const SIGNED_MESSAGE_FORMAT: &str = "hc-signed/1";

/// A message signed by its sender's key, in the trust list's envelope: `{"format": "hc-signed/1", "signed": …}`.
/// The national hub's exchange is authenticated this way, each region by the key registered for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedMessage {
    pub format: String,
    pub signed: String,
}

impl SignedMessage {
    pub fn sign<T: Serialize>(value: &T, key: &SigningKey) -> Result<Self, EncodeError> {
        Ok(Self {
            format: SIGNED_MESSAGE_FORMAT.into(),
            signed: sign_json(value, key)?,
        })
    }

    /// The message, if `key` signed it.
    pub fn open<T: DeserializeOwned>(&self, key: &VerifyingKey) -> Result<T, TrustListError> {
        if self.format != SIGNED_MESSAGE_FORMAT {
            return Err(TrustListError::BadFormat(self.format.clone()));
        }
        open_json(&self.signed, key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(signer: &str, key: &SigningKey) -> TrustList {
        TrustList {
            signer: signer.into(),
            sequence: 1,
            issued_at: 1_000,
            expires_at: 2_000,
            issuers: vec![TrustedIssuer {
                region: key.issuer().into(),
                keys: vec![ListedKey::of(&key.verifying_key())],
                colours: None,
            }],
        }
    }

    #[test]
    fn a_list_verifies_only_against_its_root_and_only_while_valid() {
        let root = SigningKey::from_seed("610100", "xa-root", &[7; 32]).expect("root");
        let code_key = SigningKey::from_seed("610100", "xa-1", &[8; 32]).expect("key");
        let other = SigningKey::from_seed("610100", "xa-root", &[9; 32]).expect("impostor");
        let signed = list("610100", &code_key).sign(&root).expect("sign");

        let verified = signed.verify(&root.verifying_key(), 1_500).expect("valid");
        assert_eq!(verified, list("610100", &code_key));
        let store = verified.trust_store().expect("store");
        assert_eq!(crate::Keys::find(&store, b"xa-1").len(), 1);

        assert_eq!(
            signed.verify(&other.verifying_key(), 1_500),
            Err(TrustListError::BadSignature),
            "signed with another root key"
        );
        assert_eq!(
            signed.verify(&root.verifying_key(), 2_000),
            Err(TrustListError::Expired(2_000))
        );
        let mut altered = signed.clone();
        altered.signed.replace_range(40..41, "A");
        if altered.signed != signed.signed {
            assert!(altered.verify(&root.verifying_key(), 1_500).is_err());
        }
        let guangzhou = SigningKey::from_seed("440100", "xa-root", &[7; 32]).expect("root");
        assert!(matches!(
            signed.verify(&guangzhou.verifying_key(), 1_500),
            Err(TrustListError::WrongSigner { .. })
        ));
    }

    #[test]
    fn garbage_is_refused_with_its_reason_never_a_panic() {
        let root = SigningKey::from_seed("610100", "xa-root", &[7; 32]).expect("root");
        let signed = |s: &str| SignedTrustList {
            format: TRUST_LIST_FORMAT.into(),
            signed: s.into(),
        };
        let key = root.verifying_key();
        assert_eq!(
            signed("***").verify(&key, 0),
            Err(TrustListError::BadEncoding)
        );
        assert!(matches!(
            signed("AAAA").verify(&key, 0),
            Err(TrustListError::BadCbor(_))
        ));
        let mut wrong = signed("AAAA");
        wrong.format = "x".into();
        assert!(matches!(
            wrong.verify(&key, 0),
            Err(TrustListError::BadFormat(_))
        ));
    }
}
