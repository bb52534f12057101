use std::sync::Arc;

use deadpool_postgres::Pool;
use hc_platform::privacy::BlindIndex;
use hc_platform::store::Store;
use hc_token::Pseudonyms;

use crate::scans::ScanLog;
use crate::settings::VerificationSettings;
use crate::trust::Trust;
use crate::venues::Venues;

#[derive(Clone)]
pub struct AppState {
    pub db: Pool,
    pub store: Store,
    pub index: BlindIndex,
    pub settings: Arc<VerificationSettings>,
    pub trust: Arc<Trust>,
    pub pseudonyms: Arc<Pseudonyms>,
    pub venues: Arc<Venues>,
    pub scans: ScanLog,
}
