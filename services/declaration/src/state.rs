use std::sync::Arc;

use deadpool_postgres::Pool;
use hc_platform::privacy::BlindIndex;

use crate::settings::DeclarationSettings;

#[derive(Clone)]
pub struct AppState {
    pub db: Pool,
    pub index: BlindIndex,
    pub settings: Arc<DeclarationSettings>,
}
