//! The two outside services identity relies on: the SMS gateway that delivers one-time codes and the real-name
//! verifier (the public-security record check the health-code platforms ran at registration). Each is chosen by
//! configuration, and no default is assumed: a deployment names a real provider (`http`) or opts in to the
//! development stand-in (`dev`), which production refuses.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hc_domain::{IdNumber, PersonName, Phone};
use hc_platform::store::Store;
use hc_platform::tls::Tls;
use redis::AsyncCommands;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;

/// `[identity.sms]` and `[identity.real_name]` (documented in config/default.toml).
#[derive(Debug, Clone, Deserialize)]
pub struct ProviderSettings {
    pub kind: String,
    pub url: String,
    pub token: SecretString,
    pub timeout_ms: u64,
}

/// A provider behind an HTTP endpoint: one JSON POST per call, bearer-authenticated, bounded in time.
pub struct HttpProvider {
    http: reqwest::Client,
    url: String,
    token: SecretString,
}

impl HttpProvider {
    async fn post<T: DeserializeOwned>(&self, body: &serde_json::Value) -> anyhow::Result<T> {
        let response = self
            .http
            .post(&self.url)
            .bearer_auth(self.token.expose_secret())
            .json(body)
            .send()
            .await?
            .error_for_status()?;
        Ok(response.json().await?)
    }
}

enum Kind {
    Dev,
    Http(HttpProvider),
}

fn kind(settings: &ProviderSettings, section: &str, tls: &Tls) -> anyhow::Result<Kind> {
    match settings.kind.as_str() {
        "dev" => {
            anyhow::ensure!(
                !tls.required(),
                "{section}.kind = \"dev\" is refused in the production profile (tls.required)"
            );
            Ok(Kind::Dev)
        }
        "http" => {
            anyhow::ensure!(
                settings.url.starts_with("http://") || settings.url.starts_with("https://"),
                "{section}.url must be the provider's http(s) URL"
            );
            tls.check_https(&format!("{section}.url"), &settings.url)?;
            let http = tls
                .http_client()
                .timeout(Duration::from_millis(settings.timeout_ms.max(1)))
                .build()
                .context("HTTP client")?;
            Ok(Kind::Http(HttpProvider {
                http,
                url: settings.url.clone(),
                token: settings.token.clone(),
            }))
        }
        "" => anyhow::bail!(
            "{section}.kind must be set: \"http\" (a provider at {section}.url) or \"dev\" (the development stand-in)"
        ),
        other => anyhow::bail!("{section}.kind: unknown {other:?} (known: http, dev)"),
    }
}

/// The Redis key (without prefix) where the development gateway leaves the code for `phone`.
pub fn dev_sms_key(phone: &str) -> String {
    format!("sms:dev:{phone}")
}

/// The Redis key (without prefix) where the development gateway leaves the last notice for `phone`.
pub fn dev_notice_key(phone: &str) -> String {
    format!("sms:dev:notice:{phone}")
}

/// What identity sends to a phone.
#[derive(Debug, Clone)]
pub enum Message {
    /// A one-time code, valid for `ttl_seconds`.
    Code { code: String, ttl_seconds: u64 },
    /// The person this phone signed in as has moved to another phone: its ID number's certified holder registered
    /// again from there. The provider's template `person_moved` tells the phone's owner whom to call if that was
    /// not them.
    PersonMoved,
}

/// Delivers messages to phones. The development gateway keeps them in Redis (never in the log) for tests and demos to
/// read; the HTTP gateway posts `{"phone", "code", "ttl_seconds"}` for a code and `{"phone", "template"}` for a
/// notice to the provider.
pub struct Sms {
    kind: Kind,
    store: Store,
}

impl Sms {
    pub fn new(settings: &ProviderSettings, store: Store, tls: &Tls) -> anyhow::Result<Self> {
        Ok(Self {
            kind: kind(settings, "identity.sms", tls)?,
            store,
        })
    }

    /// Sends without making the caller wait for a provider: the answer to a sign-in request must take as long for a
    /// registered phone, which is sent a code, as for any other, which is not. A failure is logged and counted
    /// (`identity_sms_failures_total`); the citizen asks again. The development gateway only writes to Redis, and does
    /// so before returning, so that tests and the demo find the message at once.
    pub async fn send_detached(self: &Arc<Self>, phone: &Phone, message: Message) {
        let (sms, phone) = (self.clone(), phone.clone());
        let sending = async move {
            if let Err(err) = sms.send(&phone, &message).await {
                failed(&err);
            }
        };
        match self.kind {
            Kind::Dev => sending.await,
            Kind::Http(_) => drop(tokio::spawn(sending)),
        }
    }

    pub async fn send(&self, phone: &Phone, message: &Message) -> anyhow::Result<()> {
        let phone = phone.expose();
        match &self.kind {
            Kind::Dev => {
                let (key, text, ttl) = match message {
                    Message::Code { code, ttl_seconds } => {
                        (dev_sms_key(phone), code.as_str(), *ttl_seconds)
                    }
                    Message::PersonMoved => (dev_notice_key(phone), "person_moved", 86_400),
                };
                let key = self.store.key(&key);
                self.store.conn().set_ex::<_, _, ()>(key, text, ttl).await?;
            }
            Kind::Http(provider) => {
                let body = match message {
                    Message::Code { code, ttl_seconds } => {
                        json!({"phone": phone, "code": code, "ttl_seconds": ttl_seconds})
                    }
                    Message::PersonMoved => json!({"phone": phone, "template": "person_moved"}),
                };
                provider.post::<serde::de::IgnoredAny>(&body).await?;
            }
        }
        Ok(())
    }
}

fn failed(err: &anyhow::Error) {
    tracing::warn!(error = %err, "the SMS gateway did not take a message");
    metrics::counter!("identity_sms_failures_total").increment(1);
}

/// The ticket the development verifier accepts for `id_number`: it stands for a passed check of the holder (in
/// production a face match against the ID card's photo, done in the verifier's own app).
pub fn dev_real_name_ticket(id_number: &str) -> String {
    format!("dev:{}", id_number.to_ascii_uppercase())
}

/// Asks whether a registrant is the holder of the ID number they give. The HTTP verifier gets
/// `{"name", "id_number", "ticket"}` and answers `{"certified": bool}`.
pub struct RealName(Kind);

impl RealName {
    pub fn new(settings: &ProviderSettings, tls: &Tls) -> anyhow::Result<Self> {
        Ok(Self(kind(settings, "identity.real_name", tls)?))
    }

    pub async fn certifies(
        &self,
        name: &PersonName,
        id_number: &IdNumber,
        ticket: &str,
    ) -> anyhow::Result<bool> {
        match &self.0 {
            Kind::Dev => Ok(ticket == dev_real_name_ticket(id_number.expose())),
            Kind::Http(provider) => {
                #[derive(Deserialize)]
                struct Answer {
                    certified: bool,
                }
                let answer: Answer = provider
                    .post(&json!({"name": name.expose(), "id_number": id_number.expose(), "ticket": ticket}))
                    .await?;
                Ok(answer.certified)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neither_provider_has_a_default_and_each_names_its_key_when_unset() {
        let defaults: hc_platform::settings::Settings<crate::IdentitySettings> =
            hc_platform::settings::load_with(crate::DEFAULT_CONFIG, "identity", None, |b| b)
                .expect("defaults load");
        let tls = Tls::from_settings(&defaults.platform.tls).expect("system roots");
        for (settings, section) in [
            (&defaults.service.sms, "identity.sms"),
            (&defaults.service.real_name, "identity.real_name"),
        ] {
            let Err(err) = kind(settings, section, &tls) else {
                panic!("{section} has a default provider");
            };
            assert!(
                err.to_string()
                    .contains(&format!("{section}.kind must be set")),
                "{err}"
            );
        }
        let dev = ProviderSettings {
            kind: "dev".into(),
            ..defaults.service.sms.clone()
        };
        assert!(matches!(kind(&dev, "identity.sms", &tls), Ok(Kind::Dev)));
        // The production profile refuses the stand-in, and a provider reached without TLS.
        let production = Tls::from_settings(&hc_platform::settings::TlsSettings {
            required: true,
            ..defaults.platform.tls.clone()
        })
        .expect("system roots");
        assert!(kind(&dev, "identity.sms", &production).is_err());
        let plain = ProviderSettings {
            kind: "http".into(),
            url: "http://sms.example/v1/codes".into(),
            ..defaults.service.sms.clone()
        };
        assert!(kind(&plain, "identity.sms", &tls).is_ok());
        assert!(kind(&plain, "identity.sms", &production).is_err());
        let http_without_url = ProviderSettings {
            kind: "http".into(),
            ..defaults.service.sms.clone()
        };
        assert!(kind(&http_without_url, "identity.sms", &tls).is_err());
    }
}
