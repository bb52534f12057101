//! Sending one-time codes. The development gateway stores the code in Redis, never in the log, so tests and
//! the demo can read it.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use hc_domain::Phone;
use hc_platform::store::Store;
use redis::AsyncCommands;

use crate::settings::IdentitySettings;

pub trait SmsGateway: Send + Sync {
    /// Sends `code` to `phone`; `ttl_seconds` is how long the code is valid.
    fn send_code<'a>(
        &'a self,
        phone: &'a Phone,
        code: &'a str,
        ttl_seconds: u64,
    ) -> BoxFuture<'a, anyhow::Result<()>>;
}

/// The Redis key (without prefix) where the development gateway leaves the code for `phone`.
pub fn dev_sms_key(phone: &str) -> String {
    format!("sms:dev:{phone}")
}

struct DevGateway(Store);

impl SmsGateway for DevGateway {
    fn send_code<'a>(
        &'a self,
        phone: &'a Phone,
        code: &'a str,
        ttl_seconds: u64,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let key = self.0.key(&dev_sms_key(phone.expose()));
            self.0
                .conn()
                .set_ex::<_, _, ()>(key, code, ttl_seconds)
                .await?;
            Ok(())
        })
    }
}

pub fn gateway(settings: &IdentitySettings, store: Store) -> anyhow::Result<Arc<dyn SmsGateway>> {
    match settings.sms_gateway.as_str() {
        "dev" => {
            anyhow::ensure!(
                std::env::var("APP_ENV").as_deref() != Ok("production"),
                "identity.sms_gateway = \"dev\" is refused when APP_ENV=production"
            );
            Ok(Arc::new(DevGateway(store)))
        }
        other => anyhow::bail!("identity.sms_gateway: unknown gateway {other:?} (known: dev)"),
    }
}
