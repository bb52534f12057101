use std::sync::Arc;

use deadpool_postgres::Pool;
use hc_platform::auth::KeyRing;
use hc_platform::privacy::{BlindIndex, FieldCipher};
use hc_platform::settings::AuthSettings;
use hc_platform::store::Store;

use crate::providers::{RealName, Sms};
use crate::settings::IdentitySettings;

/// Everything a handler needs, shared by all workers.
#[derive(Clone)]
pub struct AppState {
    pub db: Pool,
    pub store: Store,
    pub keys: Arc<KeyRing>,
    pub cipher: Arc<FieldCipher>,
    pub index: BlindIndex,
    /// The national blind index (docs/interop.md), where the platform takes part in the national exchange.
    pub national: Option<BlindIndex>,
    pub sms: Arc<Sms>,
    pub real_name: Arc<RealName>,
    pub auth: AuthSettings,
    pub settings: Arc<IdentitySettings>,
}
