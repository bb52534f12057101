use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use deadpool_postgres::Pool;
use hc_platform::privacy::BlindIndex;

use crate::settings::DeclarationSettings;

#[derive(Clone)]
pub struct AppState {
    pub db: Pool,
    /// Reads that tolerate lag (an import's progress): the replica of `database.read_url`, else `db`.
    pub db_read: Pool,
    pub index: BlindIndex,
    /// The national blind index, where this platform takes part in the national fact exchange.
    pub national: Option<BlindIndex>,
    pub settings: Arc<DeclarationSettings>,
    /// Permits for imports in flight (`import_max_concurrent`); None: no cap.
    pub import_permits: Option<Arc<tokio::sync::Semaphore>>,
    /// Imports in flight per client on this replica (`import_max_per_client`).
    pub imports_by_client: ImportsByClient,
}

/// How many imports each client has in flight on this replica.
#[derive(Clone, Default)]
pub struct ImportsByClient(Arc<Mutex<HashMap<String, usize>>>);

impl ImportsByClient {
    /// A turn for `client` unless it already holds `max` (0: no limit); the turn ends when dropped.
    pub fn take(&self, client: &str, max: usize) -> Option<ClientTurn> {
        let mut running = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = running.entry(client.to_owned()).or_default();
        if max > 0 && *n >= max {
            return None;
        }
        *n += 1;
        Some(ClientTurn {
            imports: self.clone(),
            client: client.to_owned(),
        })
    }
}

/// One import in flight, counted against its client until dropped.
pub struct ClientTurn {
    imports: ImportsByClient,
    client: String,
}

impl Drop for ClientTurn {
    fn drop(&mut self) {
        let mut running = self.imports.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = running.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                running.remove(&self.client);
            }
        }
    }
}
