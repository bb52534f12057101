//! TLS on every connection a service opens or accepts, with one rustls (on aws-lc-rs) and one trust store: the
//! PEM file of `tls.ca_file`, or the system's when it is empty. A connection is encrypted when its URL says so
//! (`sslmode=require` or `verify-full` for PostgreSQL, `rediss://`, `https://`), and an encrypted connection always
//! verifies the peer's certificate and name: there is no "encrypt but trust anyone" mode. Under `tls.required`
//! (the production profile) a plain URL is refused at start-up instead of used.

use std::sync::Arc;

use anyhow::Context;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use crate::settings::TlsSettings;

/// The trust store and, when configured, the service's own certificate.
#[derive(Clone)]
pub struct Tls {
    roots: Arc<RootCertStore>,
    /// The CA file's PEM, for redis-rs, which takes roots as PEM bytes.
    ca_pem: Option<Vec<u8>>,
    required: bool,
}

impl Tls {
    pub fn from_settings(settings: &TlsSettings) -> anyhow::Result<Self> {
        // One provider for the whole process, so that libraries building their own rustls configuration (redis-rs)
        // never find none or two; a second call finds it installed already.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let mut roots = RootCertStore::empty();
        let ca_pem = if settings.ca_file.is_empty() {
            let native = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(native.certs);
            None
        } else {
            let pem = std::fs::read(&settings.ca_file)
                .with_context(|| format!("tls.ca_file {}", settings.ca_file))?;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                roots
                    .add(cert.context("tls.ca_file: not a PEM certificate")?)
                    .context("tls.ca_file: not a CA certificate")?;
            }
            anyhow::ensure!(!roots.is_empty(), "tls.ca_file holds no certificate");
            Some(pem)
        };
        Ok(Self {
            roots: Arc::new(roots),
            ca_pem,
            required: settings.required,
        })
    }

    /// The system's trust store, TLS not required: for tools and tests that build their own connections.
    pub fn system() -> Self {
        Self::from_settings(&TlsSettings::default())
            .expect("the system's trust store needs no file")
    }

    /// The client side of every outgoing TLS connection: the trust store, full verification.
    pub fn client_config(&self) -> ClientConfig {
        ClientConfig::builder()
            .with_root_certificates(self.roots.clone())
            .with_no_client_auth()
    }

    /// An HTTP client builder that speaks HTTPS with this trust store.
    pub fn http_client(&self) -> reqwest::ClientBuilder {
        reqwest::Client::builder().tls_backend_preconfigured(self.client_config())
    }

    /// The PostgreSQL connector (used only when the URL's `sslmode` asks for TLS).
    pub fn postgres(&self) -> tokio_postgres_rustls::MakeRustlsConnect {
        tokio_postgres_rustls::MakeRustlsConnect::new(self.client_config())
    }

    /// Roots for redis-rs `rediss://` connections: the CA file, or `None` for the system's store.
    pub fn redis_certs(&self) -> redis::TlsCertificates {
        redis::TlsCertificates {
            client_tls: None,
            root_cert: self.ca_pem.clone(),
        }
    }

    /// The production profile: every connection must be TLS, and no development stand-in may run.
    pub fn required(&self) -> bool {
        self.required
    }

    /// Refuses a plain `http://` URL under `tls.required`; `key` names the setting in the error.
    pub fn check_https(&self, key: &str, url: &str) -> anyhow::Result<()> {
        anyhow::ensure!(
            !self.required || url.is_empty() || url.starts_with("https://"),
            "{key} must be an https:// URL (tls.required is on)"
        );
        Ok(())
    }

    /// Refuses a plain `redis://` URL under `tls.required`, and a `rediss://` one that turns verification off.
    pub fn check_redis(&self, key: &str, url: &str) -> anyhow::Result<()> {
        anyhow::ensure!(
            !url.contains("#insecure"),
            "{key}: #insecure is refused (a TLS connection verifies its peer)"
        );
        anyhow::ensure!(
            !self.required || url.trim().starts_with("rediss://"),
            "{key} must be a rediss:// URL (tls.required is on)"
        );
        Ok(())
    }

    /// Refuses a PostgreSQL connection that may go unencrypted under `tls.required`.
    pub fn check_postgres(&self, key: &str, config: &tokio_postgres::Config) -> anyhow::Result<()> {
        anyhow::ensure!(
            !self.required || config.get_ssl_mode() == tokio_postgres::config::SslMode::Require,
            "{key} must set sslmode=verify-full (tls.required is on)"
        );
        Ok(())
    }
}

/// Parses a PostgreSQL URL. libpq's `sslmode=verify-full` and `verify-ca` (which tokio-postgres does not know) mean
/// `require` here: every TLS connection is verified in full, so both ask for what `verify-full` promises. `prefer`
/// (libpq's default, and so a URL without `sslmode`) would take an unverified certificate or none: here it means plain.
pub fn postgres_config(url: &str) -> Result<tokio_postgres::Config, tokio_postgres::Error> {
    use tokio_postgres::config::SslMode;
    let url = url
        .replace("sslmode=verify-full", "sslmode=require")
        .replace("sslmode=verify-ca", "sslmode=require");
    let mut config: tokio_postgres::Config = url.parse()?;
    if config.get_ssl_mode() == SslMode::Prefer {
        config.ssl_mode(SslMode::Disable);
    }
    Ok(config)
}

/// The server side: the service's certificate chain and key, when `tls.cert_file` and `tls.key_file` are set.
pub fn server_config(settings: &TlsSettings) -> anyhow::Result<Option<ServerConfig>> {
    match (settings.cert_file.is_empty(), settings.key_file.is_empty()) {
        (true, true) => return Ok(None),
        (false, false) => {}
        _ => anyhow::bail!("tls.cert_file and tls.key_file go together"),
    }
    let chain = CertificateDer::pem_file_iter(&settings.cert_file)
        .with_context(|| format!("tls.cert_file {}", settings.cert_file))?
        .collect::<Result<Vec<_>, _>>()
        .context("tls.cert_file: not PEM certificates")?;
    let key = PrivateKeyDer::from_pem_file(&settings.key_file)
        .with_context(|| format!("tls.key_file {}", settings.key_file))?;
    let config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("tls.cert_file and tls.key_file do not make a certificate")?;
    Ok(Some(config))
}
