//! The subject of a code: the person id sealed with AES-256-GCM under a platform secret, with a fresh random nonce
//! every time. Only the issuing platform can open it (and so find the person's current status); anyone else sees
//! bytes that differ on every code, so two codes of one person cannot be told to belong together.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use uuid::Uuid;

use crate::error::KeyError;

/// Binds a sealed subject to its use: it cannot be replayed as another kind of ciphertext.
const AAD: &[u8] = b"HCQ1 subject";

/// Key number (1) + nonce (12) + sealed person id (16) + tag (16).
pub const PSEUDONYM_LEN: usize = 1 + NONCE_LEN + 16 + 16;

/// The pseudonym keys: the current one seals; it and the previous ones open (each numbered, so rotation needs no
/// trial decryption).
pub struct Pseudonyms {
    current: u8,
    keys: Vec<(u8, LessSafeKey)>,
}

impl std::fmt::Debug for Pseudonyms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pseudonyms")
            .field("current", &self.current)
            .finish_non_exhaustive()
    }
}

impl Pseudonyms {
    /// `keys`: (number, 32-byte secret); `current` names the one that seals.
    pub fn new<'a>(
        current: u8,
        keys: impl IntoIterator<Item = (u8, &'a [u8])>,
    ) -> Result<Self, KeyError> {
        let keys = keys
            .into_iter()
            .map(|(n, secret)| {
                if secret.len() != 32 {
                    return Err(KeyError::PseudonymKeyLength(secret.len()));
                }
                let key = UnboundKey::new(&AES_256_GCM, secret).map_err(|_| KeyError::Rejected)?;
                Ok((n, LessSafeKey::new(key)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if !keys.iter().any(|(n, _)| *n == current) {
            return Err(KeyError::Rejected);
        }
        Ok(Self { current, keys })
    }

    /// From the settings form `number:base64-key, ...`: the first entry seals, all open.
    pub fn from_spec(spec: &str) -> Result<Self, KeyError> {
        use base64::Engine;
        let mut keys = Vec::new();
        for (i, entry) in spec
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .enumerate()
        {
            // The position only: the entry is a secret.
            let bad = || KeyError::PseudonymSpec(i + 1);
            let (number, key) = entry.split_once(':').ok_or_else(bad)?;
            let number: u8 = number.parse().map_err(|_| bad())?;
            let key = base64::engine::general_purpose::STANDARD
                .decode(key)
                .map_err(|_| bad())?;
            keys.push((number, key));
        }
        let current = keys
            .first()
            .map(|(n, _)| *n)
            .ok_or(KeyError::NoPseudonymKey)?;
        Self::new(current, keys.iter().map(|(n, k)| (*n, k.as_slice())))
    }

    fn key(&self, n: u8) -> Option<&LessSafeKey> {
        self.keys.iter().find(|(k, _)| *k == n).map(|(_, key)| key)
    }

    /// A new pseudonym for the person (different every call).
    pub fn seal(&self, person: Uuid) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        // The system's randomness failing is not something a code can be issued without.
        aws_lc_rs::rand::fill(&mut nonce).expect("system randomness");
        let mut out = Vec::with_capacity(PSEUDONYM_LEN);
        out.push(self.current);
        out.extend_from_slice(&nonce);
        let mut sealed = person.as_bytes().to_vec();
        self.key(self.current)
            .expect("the current key is checked at construction")
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(AAD),
                &mut sealed,
            )
            .expect("sealing 16 bytes");
        out.extend_from_slice(&sealed);
        out
    }

    /// The person behind a pseudonym this platform made, or None (another platform's, altered, or a retired key's).
    pub fn open(&self, pseudonym: &[u8]) -> Option<Uuid> {
        if pseudonym.len() != PSEUDONYM_LEN {
            return None;
        }
        let key = self.key(pseudonym[0])?;
        let nonce = Nonce::try_assume_unique_for_key(&pseudonym[1..1 + NONCE_LEN]).ok()?;
        let mut sealed = pseudonym[1 + NONCE_LEN..].to_vec();
        let plain = key.open_in_place(nonce, Aad::from(AAD), &mut sealed).ok()?;
        Uuid::from_slice(plain).ok()
    }
}
