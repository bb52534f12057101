use std::sync::Arc;

use hc_platform::store::Store;

use crate::keys::Keys;
use crate::memory::Memory;
use crate::routes::page::Page;
use crate::settings::RenderingSettings;
use crate::status::StatusSource;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub settings: Arc<RenderingSettings>,
    pub keys: Arc<Keys>,
    pub status: Arc<StatusSource>,
    /// None when `memory_cache_enabled` is off.
    pub memory: Option<Arc<Memory>>,
    pub page: Arc<Page>,
}
