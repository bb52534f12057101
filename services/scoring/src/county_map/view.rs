//! The public map as each replica keeps it: rebuilt from the database only when the generation moves (checked at
//! most once a second), each province's JSON rendered once per generation.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use actix_web::web::Bytes;
use chrono::{DateTime, NaiveDate, Utc};
use hc_domain::{RegionCode, china_time};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::rules::{CountyLevel, MapReason};
use super::{CountyMap, REFRESH, SERIES_DAYS};
use crate::db::county_map as db;

/// One county on the public map.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CountyView {
    pub region: String,
    pub name: String,
    /// The prefecture-level city it belongs to.
    pub prefecture: String,
    pub prefecture_name: String,
    /// The level shown: green, blue, yellow, orange or red.
    pub level: CountyLevel,
    /// The level the published rules give (differs from `level` under an override).
    pub derived: CountyLevel,
    pub overridden: bool,
    /// The three-level risk the level sets for the colour rules (low, medium or high) where the map sets risks
    /// (`scoring.county_map.sets_risk_in`); null elsewhere, where officials set them.
    pub risk: Option<String>,
    pub reasons: Vec<MapReason>,
    /// When the county last changed (null: green since the map began).
    pub since: Option<DateTime<Utc>>,
    /// Its indices over the last 14 days, oldest first (days without data left out).
    pub indices: Vec<DayIndices>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DayIndices {
    pub day: NaiveDate,
    pub control: Option<f64>,
    pub flow: Option<f64>,
}

/// The public map of one province: every county, green ones included.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CountyMapView {
    pub province: String,
    pub name: String,
    /// Grows with every change; the ETag.
    pub generation: i64,
    pub counties: Vec<CountyView>,
}

/// One county with its history and the inputs of its indices.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CountyDetail {
    pub region: String,
    pub name: String,
    pub level: CountyLevel,
    pub derived: CountyLevel,
    pub reasons: Vec<MapReason>,
    /// Every change of its level, newest first (at most 100).
    pub history: Vec<LevelChange>,
    /// Its indices with their inputs over the last 30 days, oldest first.
    pub indices: Vec<DayIndicesWithInputs>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LevelChange {
    pub level: CountyLevel,
    pub derived: CountyLevel,
    pub overridden: bool,
    pub reasons: Vec<MapReason>,
    /// What the rules read (the counts of docs/indices.md §1).
    #[schema(value_type = super::rules::CountyFacts)]
    pub inputs: serde_json::Value,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DayIndicesWithInputs {
    pub day: NaiveDate,
    pub control: Option<f64>,
    pub flow: Option<f64>,
    #[schema(value_type = super::indices::IndexInputs)]
    pub inputs: serde_json::Value,
}

/// A replica's copy of the map at one generation.
pub(super) struct Held {
    generation: i64,
    checked: Instant,
    levels: Arc<HashMap<String, db::LevelRow>>,
    series: Arc<HashMap<String, Vec<DayIndices>>>,
    rendered: HashMap<RegionCode, Bytes>,
}

fn level(raw: &str) -> CountyLevel {
    raw.parse().unwrap_or(CountyLevel::Green)
}

fn reasons(raw: &serde_json::Value) -> Vec<MapReason> {
    serde_json::from_value(raw.clone()).unwrap_or_default()
}

impl CountyMap {
    /// The province's map as JSON and its generation, from memory unless the generation moved.
    pub async fn view(&self, province: RegionCode) -> anyhow::Result<(i64, Bytes)> {
        // Due for a check: this request makes it, and the others meanwhile are served the copy (one small read a
        // second per replica, however many requests come).
        let held = {
            let Ok(mut guard) = self.copy.lock() else {
                anyhow::bail!("map copy poisoned");
            };
            match guard.as_mut() {
                Some(c) => match c.rendered.get(&province) {
                    Some(body) if c.checked.elapsed() < REFRESH => {
                        return Ok((c.generation, body.clone()));
                    }
                    Some(body) => {
                        c.checked = Instant::now();
                        Some((c.generation, body.clone()))
                    }
                    None => None,
                },
                None => None,
            }
        };
        match (self.refresh(province).await, held) {
            (Ok(fresh), _) => Ok(fresh),
            (Err(err), Some(held)) => {
                tracing::warn!(error = %err, "checking the county map's generation failed; serving the copy held");
                Ok(held)
            }
            (Err(err), None) => Err(err),
        }
    }

    /// The province's map after checking the generation (and reloading the copy if it moved).
    async fn refresh(&self, province: RegionCode) -> anyhow::Result<(i64, Bytes)> {
        let client = self.db.get().await?;
        let generation = db::generation(&client).await?;
        let known = (self.copy.lock().ok())
            .and_then(|g| g.as_ref().map(|c| c.generation == generation))
            .unwrap_or(false);
        if !known {
            let levels = db::latest_levels(&client).await?;
            let first = china_time::day_of(Utc::now()) - chrono::Days::new(SERIES_DAYS as u64 - 1);
            let mut series: HashMap<String, Vec<DayIndices>> = HashMap::new();
            for r in db::indices_since(&client, first, None).await? {
                series.entry(r.region).or_default().push(DayIndices {
                    day: r.day,
                    control: r.control,
                    flow: r.flow,
                });
            }
            if let Ok(mut guard) = self.copy.lock() {
                *guard = Some(Held {
                    generation,
                    checked: Instant::now(),
                    levels: Arc::new(levels),
                    series: Arc::new(series),
                    rendered: HashMap::new(),
                });
            }
        }
        drop(client);
        let (levels, series) = {
            let mut guard = self
                .copy
                .lock()
                .map_err(|_| anyhow::anyhow!("map copy poisoned"))?;
            let c = guard
                .as_mut()
                .ok_or_else(|| anyhow::anyhow!("no map copy"))?;
            c.checked = Instant::now();
            if let Some(body) = c.rendered.get(&province) {
                return Ok((c.generation, body.clone()));
            }
            (c.levels.clone(), c.series.clone())
        };
        let body = Bytes::from(serde_json::to_vec(&render(
            province,
            generation,
            &levels,
            &series,
            |c| self.sets_risk(c),
        ))?);
        metrics::counter!("scoring_county_map_renders_total").increment(1);
        if let Ok(mut guard) = self.copy.lock()
            && let Some(c) = guard.as_mut()
            && c.generation == generation
        {
            c.rendered.insert(province, body.clone());
        }
        Ok((generation, body))
    }

    /// One county's level, its history and its indices with their inputs (read from the database: a county's
    /// page, not the map everyone refreshes).
    pub async fn detail(&self, county: RegionCode) -> anyhow::Result<CountyDetail> {
        let client = self.db.get().await?;
        let code = county.to_string();
        let history = db::history(&client, &code, 100).await?;
        let first = china_time::day_of(Utc::now()) - chrono::Days::new(29);
        let indices = db::indices_since(&client, first, Some(&code)).await?;
        let current = history.first();
        Ok(CountyDetail {
            name: county.name().into(),
            level: current.map_or(CountyLevel::Green, |h| level(&h.level)),
            derived: current.map_or(CountyLevel::Green, |h| level(&h.derived)),
            reasons: current.map(|h| reasons(&h.reasons)).unwrap_or_default(),
            region: code,
            history: history
                .into_iter()
                .map(|h| LevelChange {
                    level: level(&h.level),
                    derived: level(&h.derived),
                    overridden: h.overridden,
                    reasons: reasons(&h.reasons),
                    inputs: h.inputs,
                    at: h.at,
                })
                .collect(),
            indices: indices
                .into_iter()
                .map(|r| DayIndicesWithInputs {
                    day: r.day,
                    control: r.control,
                    flow: r.flow,
                    inputs: r.inputs,
                })
                .collect(),
        })
    }
}

fn render(
    province: RegionCode,
    generation: i64,
    levels: &HashMap<String, db::LevelRow>,
    series: &HashMap<String, Vec<DayIndices>>,
    sets_risk: impl Fn(RegionCode) -> bool,
) -> CountyMapView {
    let counties = RegionCode::counties()
        .into_iter()
        .filter(|c| province.contains(*c))
        .map(|county| {
            let code = county.to_string();
            let prefecture = county.prefecture();
            let row = levels.get(&code);
            let shown = row.map_or(CountyLevel::Green, |r| level(&r.level));
            CountyView {
                name: county.name().into(),
                prefecture: prefecture.map(|p| p.to_string()).unwrap_or_default(),
                prefecture_name: prefecture.map(|p| p.name().to_owned()).unwrap_or_default(),
                level: shown,
                derived: row.map_or(CountyLevel::Green, |r| level(&r.derived)),
                overridden: row.is_some_and(|r| r.override_id.is_some()),
                risk: sets_risk(county).then(|| shown.risk().as_str().to_owned()),
                reasons: row.map(|r| reasons(&r.reasons)).unwrap_or_default(),
                since: row.map(|r| r.since),
                indices: series.get(&code).cloned().unwrap_or_default(),
                region: code,
            }
        })
        .collect();
    CountyMapView {
        province: province.to_string(),
        name: province.name().into(),
        generation,
        counties,
    }
}
