//! Personal data at rest: AES-256-GCM field encryption with a key ring (the key id is stored beside the
//! ciphertext, so keys can rotate), and the HMAC-SHA256 blind index that lets services find and key facts by
//! an ID number or phone without storing it, with a key of its own for each purpose.

use anyhow::{Context, anyhow, bail};
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::{hkdf, hmac};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hc_domain::{IdNumber, Phone};
use secrecy::{ExposeSecret, SecretString};

/// What a keyed hash is for. Each purpose has its own HMAC key, derived from `privacy.blind_index_key` with
/// HKDF-SHA256 (the purpose's label as `info`): a value of one purpose never matches another's, and what leaks of one
/// use (the IP hashes in rate-limit keys, a venue code's tag, which anyone holding the code sees) is computed under a
/// key that indexes no person. The labels are part of every stored index: changing one orphans its data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// The index every service keys a person's facts by.
    IdNumber,
    /// Identity's index of a person's phone.
    Phone,
    /// The MAC of a one-time code kept in Redis.
    OneTimeCode,
    /// A client address in rate-limit keys.
    ClientIp,
    /// The tag that makes a venue code unforgeable.
    VenueCode,
}

impl Purpose {
    const ALL: [Purpose; 5] = [
        Purpose::IdNumber,
        Purpose::Phone,
        Purpose::OneTimeCode,
        Purpose::ClientIp,
        Purpose::VenueCode,
    ];

    fn label(self) -> &'static [u8] {
        match self {
            Purpose::IdNumber => b"hc blind index: id-number",
            Purpose::Phone => b"hc blind index: phone",
            Purpose::OneTimeCode => b"hc blind index: one-time-code",
            Purpose::ClientIp => b"hc blind index: client-ip",
            Purpose::VenueCode => b"hc blind index: venue-code",
        }
    }
}

/// Keyed hashes of identifiers, one key per [`Purpose`].
#[derive(Clone)]
pub struct BlindIndex {
    keys: [hmac::Key; Purpose::ALL.len()],
}

impl BlindIndex {
    /// `key` is base64 of at least 32 random bytes.
    pub fn from_secret(key: &SecretString) -> anyhow::Result<Self> {
        let bytes = STANDARD
            .decode(key.expose_secret().trim())
            .context("privacy.blind_index_key is not base64")?;
        anyhow::ensure!(
            bytes.len() >= 32,
            "privacy.blind_index_key must hold at least 32 bytes"
        );
        // No salt: the input is already a uniformly random key (RFC 5869 §3.1).
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, &[]).extract(&bytes);
        let derive = |purpose: Purpose| -> anyhow::Result<hmac::Key> {
            let info = [purpose.label()];
            let okm = prk
                .expand(&info, hmac::HMAC_SHA256)
                .map_err(|_| anyhow!("deriving the {purpose:?} key"))?;
            Ok(hmac::Key::from(okm))
        };
        let mut keys = Vec::with_capacity(Purpose::ALL.len());
        for purpose in Purpose::ALL {
            keys.push(derive(purpose)?);
        }
        let keys = keys
            .try_into()
            .map_err(|_| anyhow!("one key per purpose"))?;
        Ok(Self { keys })
    }

    pub fn id_number(&self, id: &IdNumber) -> Vec<u8> {
        self.of(Purpose::IdNumber, id.expose().as_bytes())
    }

    pub fn phone(&self, phone: &Phone) -> Vec<u8> {
        self.of(Purpose::Phone, phone.expose().as_bytes())
    }

    /// The keyed hash of `value` for `purpose`.
    pub fn of(&self, purpose: Purpose, value: &[u8]) -> Vec<u8> {
        let index = Purpose::ALL.iter().position(|p| *p == purpose).unwrap_or(0);
        hmac::sign(&self.keys[index], value).as_ref().to_vec()
    }
}

/// Field encryption with a key ring: the first key encrypts, every key decrypts.
pub struct FieldCipher {
    keys: Vec<(String, LessSafeKey)>,
}

impl FieldCipher {
    /// `spec` is `kid:base64key[,kid:base64key…]`, each key 32 bytes; the first one encrypts.
    pub fn from_spec(spec: &SecretString) -> anyhow::Result<Self> {
        let mut keys = Vec::new();
        for entry in crate::settings::list(spec.expose_secret()) {
            let (kid, key) = entry
                .split_once(':')
                .ok_or_else(|| anyhow!("a data key must be kid:base64"))?;
            let bytes = STANDARD
                .decode(key)
                .with_context(|| format!("data key {kid} is not base64"))?;
            let unbound = UnboundKey::new(&AES_256_GCM, &bytes)
                .map_err(|_| anyhow!("data key {kid} must be 32 bytes"))?;
            keys.push((kid.to_owned(), LessSafeKey::new(unbound)));
        }
        if keys.is_empty() {
            bail!("no data encryption key configured");
        }
        Ok(Self { keys })
    }

    pub fn active_key_id(&self) -> &str {
        &self.keys[0].0
    }

    /// Encrypts `plaintext`, bound to `context` (for example the row id and column name, so a ciphertext
    /// copied to another row or column no longer decrypts). Output: nonce || ciphertext || tag.
    pub fn encrypt(&self, plaintext: &[u8], context: &[u8]) -> anyhow::Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).map_err(|_| anyhow!("no randomness"))?;
        let mut out = plaintext.to_vec();
        self.keys[0]
            .1
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context),
                &mut out,
            )
            .map_err(|_| anyhow!("encryption failed"))?;
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&out);
        Ok(sealed)
    }

    pub fn decrypt(&self, key_id: &str, sealed: &[u8], context: &[u8]) -> anyhow::Result<Vec<u8>> {
        let key = &self
            .keys
            .iter()
            .find(|(kid, _)| kid == key_id)
            .ok_or_else(|| anyhow!("unknown data key {key_id}"))?
            .1;
        anyhow::ensure!(sealed.len() > NONCE_LEN, "ciphertext too short");
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| anyhow!("bad nonce"))?;
        let mut buf = body.to_vec();
        let plain = key
            .open_in_place(nonce, Aad::from(context), &mut buf)
            .map_err(|_| anyhow!("decryption failed"))?;
        Ok(plain.to_vec())
    }
}

/// Lower-case hex, for blind indexes in Redis keys and events.
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bytes of a hex string; `None` if it is not hex.
pub fn from_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A fresh random token of `len` bytes, URL-safe base64 without padding: refresh tokens, client secrets.
pub fn random_token(len: usize) -> anyhow::Result<String> {
    let mut bytes = vec![0u8; len];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| anyhow!("no randomness"))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// Fresh random bytes, base64: for generated keys and secrets.
pub fn random_base64(len: usize) -> anyhow::Result<String> {
    let mut bytes = vec![0u8; len];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| anyhow!("no randomness"))?;
    Ok(STANDARD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cipher() -> FieldCipher {
        let spec = format!(
            "k2:{},k1:{}",
            random_base64(32).expect("rand"),
            random_base64(32).expect("rand")
        );
        FieldCipher::from_spec(&SecretString::from(spec)).expect("cipher")
    }

    #[test]
    fn a_field_round_trips_and_is_bound_to_its_context() {
        let c = cipher();
        let sealed = c.encrypt("张三".as_bytes(), b"row1/name").expect("encrypt");
        assert!(!sealed.windows(6).any(|w| w == "张三".as_bytes()));
        assert_eq!(
            c.decrypt("k2", &sealed, b"row1/name").expect("decrypt"),
            "张三".as_bytes()
        );
        assert!(
            c.decrypt("k2", &sealed, b"row2/name").is_err(),
            "moved ciphertext must not decrypt"
        );
        assert!(
            c.decrypt("k1", &sealed, b"row1/name").is_err(),
            "wrong key must not decrypt"
        );
    }

    #[test]
    fn the_blind_index_is_keyed_and_domain_separated() {
        let a = BlindIndex::from_secret(&SecretString::from(random_base64(32).expect("rand")))
            .expect("key");
        let b = BlindIndex::from_secret(&SecretString::from(random_base64(32).expect("rand")))
            .expect("key");
        let phone = Phone::parse("13800138000").expect("phone");
        assert_eq!(a.phone(&phone), a.phone(&phone));
        assert_ne!(a.phone(&phone), b.phone(&phone));
        assert_ne!(
            a.phone(&phone),
            a.of(Purpose::IdNumber, phone.expose().as_bytes())
        );
    }

    /// The derivation, checked against an independent HKDF-SHA256 (RFC 5869) and HMAC-SHA256 computation (Python's
    /// hmac and hashlib): every stored index depends on it, so a change must fail here, not orphan the data.
    #[test]
    fn each_purpose_has_its_own_key_derived_with_hkdf() {
        let master = STANDARD.encode([7u8; 32]);
        let index = BlindIndex::from_secret(&SecretString::from(master)).expect("key");
        let expected = [
            (
                Purpose::IdNumber,
                "668df211fdf9a5bb204957a9c4bf811f38537a0ec72d88ac9545257eb7122028",
            ),
            (
                Purpose::Phone,
                "c8630940d70b7a1d50288d16984368de12170ba9a8ac8a250edd852e5e4386dd",
            ),
            (
                Purpose::OneTimeCode,
                "d75722a1a701317a752f16a538b957f8656e90e99b393f0102812de92f0c6cdc",
            ),
            (
                Purpose::ClientIp,
                "1a7b268660fb34bb0da4076a6fd7f710359fdb4cd1c59597cb7ba5ddf543a49f",
            ),
            (
                Purpose::VenueCode,
                "a2fb61506f21be0aa13e83533b4e05959349d60aacef3a486c64775bd971f3a7",
            ),
        ];
        for (purpose, hex) in expected {
            assert_eq!(
                to_hex(&index.of(purpose, b"110101199003074514")),
                hex,
                "{purpose:?}"
            );
        }
    }
}
