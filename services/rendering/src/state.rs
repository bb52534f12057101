use std::sync::Arc;

use hc_platform::store::Store;

use crate::keys::Keys;
use crate::settings::RenderingSettings;
use crate::status::StatusSource;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub settings: Arc<RenderingSettings>,
    pub keys: Arc<Keys>,
    pub status: Arc<StatusSource>,
}
