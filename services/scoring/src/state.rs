use std::sync::Arc;

use deadpool_postgres::Pool;
use hc_platform::privacy::BlindIndex;
use hc_platform::store::Store;

use crate::recolour::Recolourer;
use crate::settings::ScoringSettings;

#[derive(Clone)]
pub struct AppState {
    pub db: Pool,
    pub store: Store,
    pub index: BlindIndex,
    pub settings: Arc<ScoringSettings>,
    pub recolourer: Arc<Recolourer>,
    pub county_map: Arc<crate::county_map::CountyMap>,
    /// The public risk map as last rendered, with the risk generation it shows.
    pub risk_map: Arc<std::sync::Mutex<Option<(i64, actix_web::web::Bytes)>>>,
}
