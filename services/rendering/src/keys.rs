//! The keys this platform signs codes with and seals pseudonyms with, read from settings (secrets), and the public
//! half that `GET /v1/trust/keys` publishes.

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hc_token::{Pseudonyms, SigningKey, VerifyingKey};
use secrecy::ExposeSecret;
use serde::Serialize;
use utoipa::ToSchema;

use crate::settings::RenderingSettings;

pub struct Keys {
    pub signer: SigningKey,
    /// Every key a verifier should trust, the signing one first.
    pub published: Vec<VerifyingKey>,
    pub pseudonyms: Pseudonyms,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("signer", &self.signer.kid())
            .finish_non_exhaustive()
    }
}

impl Keys {
    pub fn from_settings(s: &RenderingSettings) -> anyhow::Result<Self> {
        let mut signer = None;
        let mut published = Vec::new();
        for (i, spec) in hc_platform::settings::list(s.signing_keys.expose_secret()).enumerate() {
            let mut parts = spec.split(':');
            let (Some(kid), Some(seed)) = (parts.next(), parts.next()) else {
                anyhow::bail!("rendering.signing_keys: entry {} is not kid:seed", i + 1);
            };
            let retired_at = parts
                .next()
                .map(|t| t.parse::<i64>())
                .transpose()
                .with_context(|| format!("rendering.signing_keys: retired-at of {kid}"))?;
            let seed = STANDARD
                .decode(seed)
                .with_context(|| format!("rendering.signing_keys: seed of {kid} is not base64"))?;
            let key = SigningKey::from_seed(&s.issuer, kid, &seed)
                .with_context(|| format!("rendering.signing_keys: {kid}"))?;
            let mut public = key.verifying_key();
            public.signs_until = retired_at;
            published.push(public);
            if i == 0 {
                anyhow::ensure!(
                    retired_at.is_none(),
                    "rendering.signing_keys: the first key signs, so it cannot be retired"
                );
                signer = Some(key);
            }
        }
        let signer =
            signer.context("rendering.signing_keys is empty (see rendering generate-secrets)")?;
        let pseudonyms = Pseudonyms::from_spec(s.pseudonym_keys.expose_secret())
            .context("rendering.pseudonym_keys (see rendering generate-secrets)")?;
        Ok(Self {
            signer,
            published,
            pseudonyms,
        })
    }
}

/// A published key, as a JWK (RFC 8037 OKP) with the issuer and retirement added.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PublishedKey {
    #[schema(example = "OKP")]
    pub kty: &'static str,
    #[schema(example = "Ed25519")]
    pub crv: &'static str,
    #[schema(example = "EdDSA")]
    pub alg: &'static str,
    pub kid: String,
    /// The raw public key, base64url without padding.
    pub x: String,
    /// The issuer region whose codes it signs.
    #[schema(example = "440100")]
    pub iss: String,
    /// Unix seconds after which it signs nothing (codes it signed before still verify until they expire).
    pub signs_until: Option<i64>,
}

impl From<&VerifyingKey> for PublishedKey {
    fn from(k: &VerifyingKey) -> Self {
        Self {
            kty: "OKP",
            crv: "Ed25519",
            alg: "EdDSA",
            kid: k.kid.clone(),
            x: URL_SAFE_NO_PAD.encode(k.public),
            iss: k.issuer.clone(),
            signs_until: k.signs_until,
        }
    }
}

/// Development secrets for `make up`: one signing key and one pseudonym key, as environment lines.
pub fn generate_secrets() -> anyhow::Result<String> {
    let kid = format!("r{}", chrono::Utc::now().format("%Y%m%d"));
    Ok(format!(
        "HC__RENDERING__SIGNING_KEYS={kid}:{}\nHC__RENDERING__PSEUDONYM_KEYS=1:{}\n",
        hc_platform::privacy::random_base64(32)?,
        hc_platform::privacy::random_base64(32)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(signing: &str, pseudonyms: &str) -> RenderingSettings {
        let platform = hc_platform::settings::load_with::<RenderingSettings>(
            crate::DEFAULT_CONFIG,
            "rendering",
            None,
            |b| {
                b.set_override("rendering.signing_keys", signing)
                    .and_then(|b| b.set_override("rendering.pseudonym_keys", pseudonyms))
                    .expect("override")
            },
        )
        .expect("settings");
        platform.service
    }

    #[test]
    fn the_first_key_signs_and_retired_ones_are_published_until_their_time() {
        let seed = |b: u8| STANDARD.encode([b; 32]);
        let s = settings(
            &format!("new:{}, old:{}:1767225600", seed(1), seed(2)),
            &format!("2:{},1:{}", seed(3), seed(4)),
        );
        let keys = Keys::from_settings(&s).expect("keys");
        assert_eq!(keys.signer.kid(), "new");
        let published: Vec<_> = keys
            .published
            .iter()
            .map(|k| (k.kid.as_str(), k.signs_until))
            .collect();
        assert_eq!(published, [("new", None), ("old", Some(1_767_225_600))]);
        assert_eq!(
            keys.pseudonyms.seal(uuid::Uuid::nil())[0],
            2,
            "the first pseudonym key seals"
        );
    }

    #[test]
    fn missing_or_malformed_keys_are_refused_at_start_with_the_setting_named() {
        let seed = STANDARD.encode([1u8; 32]);
        let pseudo = format!("1:{seed}");
        for (signing, pseudonyms, named) in [
            (String::new(), pseudo.clone(), "rendering.signing_keys"),
            (
                format!("a:{seed}:1"),
                pseudo.clone(),
                "rendering.signing_keys",
            ),
            (
                "a:not-base64!".to_owned(),
                pseudo.clone(),
                "rendering.signing_keys",
            ),
            (
                format!("a:{}", STANDARD.encode([1u8; 16])),
                pseudo.clone(),
                "rendering.signing_keys",
            ),
            (
                format!("a:{seed}"),
                String::new(),
                "rendering.pseudonym_keys",
            ),
            (
                format!("a:{seed}"),
                "x:abc".to_owned(),
                "rendering.pseudonym_keys",
            ),
        ] {
            let err = Keys::from_settings(&settings(&signing, &pseudonyms)).expect_err("refused");
            assert!(format!("{err:#}").contains(named), "{err:#}");
        }
    }
}
