use std::sync::Arc;

use deadpool_postgres::Pool;
use hc_platform::auth::KeyRing;
use hc_platform::privacy::{BlindIndex, FieldCipher};
use hc_platform::settings::AuthSettings;
use hc_platform::store::Store;

use crate::settings::IdentitySettings;
use crate::sms::SmsGateway;

/// Everything a handler needs, shared by all workers.
#[derive(Clone)]
pub struct AppState {
    pub db: Pool,
    pub store: Store,
    pub keys: Arc<KeyRing>,
    pub cipher: Arc<FieldCipher>,
    pub index: BlindIndex,
    pub sms: Arc<dyn SmsGateway>,
    pub auth: AuthSettings,
    pub settings: Arc<IdentitySettings>,
}
