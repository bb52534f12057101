use std::sync::Arc;

use deadpool_postgres::Pool;
use hc_platform::privacy::BlindIndex;

use crate::settings::DeclarationSettings;

#[derive(Clone)]
pub struct AppState {
    pub db: Pool,
    /// Reads that tolerate lag (an import's progress): the replica of `database.read_url`, else `db`.
    pub db_read: Pool,
    pub index: BlindIndex,
    pub settings: Arc<DeclarationSettings>,
    /// Permits for imports in flight (`import_max_concurrent`); None: no cap.
    pub import_permits: Option<Arc<tokio::sync::Semaphore>>,
}
