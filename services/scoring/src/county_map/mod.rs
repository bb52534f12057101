//! The five-colour county map and the control and flow indices (Zhejiang's "one map, one code, one index";
//! docs/indices.md): recomputed from the facts on a schedule and soon after every import, one replica at a time;
//! a level that changes the three-level risk is written as a region risk, so the colour rules and the recolouring
//! follow it; the public map is served from each replica's memory.

pub mod indices;
pub mod rules;
mod view;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use deadpool_postgres::Pool;
use hc_domain::{RegionCode, RegionLevel, china_time};
use tokio_util::sync::CancellationToken;

use crate::db::county_map as db;
use crate::facts::RiskLevel;
use crate::recolour::Recolourer;
use crate::settings::CountyMapSettings;
use rules::{CountyLevel, MapReason};
pub use view::{CountyDetail, CountyMapView};

/// The advisory locks of the levels' and the indices' recomputations ("county" and "countyi" in ASCII): separate, so
/// that an import's levels never wait on another replica's scan of a day's visits.
const LEVELS_LOCK: i64 = 0x636f756e7479;
const INDICES_LOCK: i64 = 0x636f756e747969;
/// Who the region risks the map writes are set by.
pub const SET_BY: &str = "county-map";
/// Days of indices the public map carries per county (its small charts).
pub const SERIES_DAYS: i64 = 14;
/// How long a replica serves its copy of the map without checking the generation.
const REFRESH: Duration = Duration::from_secs(1);

pub struct CountyMap {
    db: Pool,
    settings: CountyMapSettings,
    recolourer: Arc<Recolourer>,
    copy: Mutex<Option<view::Held>>,
}

/// Which days' indices a round computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexDays {
    /// Today and yesterday (every scheduled round).
    Recent,
    /// Every day of the series (at start, and in the scheduled round after trajectories or case lists arrived).
    Series,
}

/// What one recomputation of the levels changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Recomputed {
    pub levels: usize,
    pub risks: usize,
}

/// Takes `lock` for the transaction, or says another replica holds it.
async fn try_lock(tx: &deadpool_postgres::Transaction<'_>, lock: i64) -> anyhow::Result<bool> {
    Ok(tx
        .query_one("SELECT pg_try_advisory_xact_lock($1)", &[&lock])
        .await?
        .get(0))
}

/// The database's clock: the rows written and the rows read in effect agree on what "now" is.
async fn db_now(tx: &deadpool_postgres::Transaction<'_>) -> anyhow::Result<DateTime<Utc>> {
    Ok(tx.query_one("SELECT now()", &[]).await?.get(0))
}

/// The county a stored code names, if it names one.
fn county_of(code: &str) -> Option<RegionCode> {
    RegionCode::parse(code)
        .ok()
        .filter(|c| c.level() == RegionLevel::County)
}

impl CountyMap {
    pub fn new(db: Pool, settings: CountyMapSettings, recolourer: Arc<Recolourer>) -> Self {
        Self {
            db,
            settings,
            recolourer,
            copy: Mutex::new(None),
        }
    }

    pub fn settings(&self) -> &CountyMapSettings {
        &self.settings
    }

    /// Whether the county map sets `county`'s three-level risk: in the regions that adopted it
    /// (`sets_risk_in`); elsewhere it is published only, and officials set the risk.
    pub fn sets_risk(&self, county: RegionCode) -> bool {
        self.settings
            .sets_risk_in
            .iter()
            .any(|r| r.contains(county))
    }

    /// Recomputes every county's level and records what changed; `None` when another replica is at it (the caller
    /// tries again: that replica may have read the facts before the latest import). Where the map sets the risk, a
    /// county whose own risk in effect differs from its level's is given its level's; the caller recolours
    /// ([`Self::recolour`]).
    pub async fn levels(&self) -> anyhow::Result<Option<Recomputed>> {
        let mut client = self.db.get().await?;
        let tx = client.transaction().await?;
        if !try_lock(&tx, LEVELS_LOCK).await? {
            return Ok(None);
        }
        let now = db_now(&tx).await?;
        let today = china_time::day_of(now);
        let mut done = Recomputed::default();

        let facts = db::county_facts(&tx, today, now).await?;
        let latest = db::latest_levels(&tx).await?;
        let risks = crate::recolour::load_risk(&tx).await?;
        let overrides = db::overrides_in_force(&tx).await?;
        // Every county with facts, a level, an override, or a risk of its own the map may have to set right.
        let at_risk = (risks.entries())
            .filter(|(_, level)| *level != RiskLevel::Low)
            .filter_map(|(r, _)| county_of(&r))
            .filter(|c| self.sets_risk(*c));
        let counties: BTreeSet<RegionCode> = (facts.keys())
            .chain(latest.keys())
            .chain(overrides.keys())
            .filter_map(|r| county_of(r))
            .chain(at_risk)
            .collect();
        for county in counties {
            let region = &county.to_string();
            let inputs = facts.get(region).cloned().unwrap_or_default();
            let (derived, mut reasons) = rules::judge(&inputs, &self.settings);
            let over = overrides.get(region.as_str());
            let level = match over {
                Some(o) => {
                    let level: CountyLevel = o.level.parse()?;
                    reasons.insert(0, overridden(level, o));
                    level
                }
                None => derived,
            };
            let reasons = serde_json::to_value(&reasons)?;
            let before = latest.get(region.as_str());
            let unchanged = match before {
                Some(b) => {
                    b.level == level.as_str()
                        && b.derived == derived.as_str()
                        && b.override_id == over.map(|o| o.id)
                        && b.reasons == reasons
                }
                None => over.is_none() && derived == CountyLevel::Green,
            };
            if self.sets_risk(county) {
                let was = risks.own(region).unwrap_or(RiskLevel::Low);
                let risk = level.risk();
                if was != risk {
                    crate::db::region_risk::set(&tx, region, risk, now, SET_BY).await?;
                    done.risks += 1;
                }
            }
            if unchanged {
                continue;
            }
            db::insert_level(
                &tx,
                region,
                level.as_str(),
                derived.as_str(),
                over.map(|o| o.id),
                &reasons,
                &serde_json::to_value(&inputs)?,
            )
            .await?;
            done.levels += 1;
        }

        if done.levels > 0 {
            db::bump_generation(&tx).await?;
        }
        tx.commit().await?;
        Ok(Some(done))
    }

    /// Recomputes the indices of `days` and says how many county-days changed; `None` when another replica is at it
    /// (it computes the same).
    pub async fn indices(&self, days: IndexDays) -> anyhow::Result<Option<usize>> {
        let mut client = self.db.get().await?;
        let tx = client.transaction().await?;
        if !try_lock(&tx, INDICES_LOCK).await? {
            return Ok(None);
        }
        let today = china_time::day_of(db_now(&tx).await?);
        let changed = self.store_indices(&tx, today, days).await?;
        if changed > 0 {
            db::bump_generation(&tx).await?;
        }
        tx.commit().await?;
        Ok(Some(changed))
    }

    /// Recolours everyone seen where the map changed a risk (as the scheduler would within its interval).
    pub async fn recolour(&self) -> anyhow::Result<()> {
        self.recolourer.invalidate();
        crate::scheduler::apply_due_risks(&self.recolourer).await?;
        Ok(())
    }

    /// The indices of `days`; a past day keeps the green share it was computed with while it was today.
    async fn store_indices(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        today: NaiveDate,
        days: IndexDays,
    ) -> anyhow::Result<usize> {
        let first = today - chrono::Days::new(SERIES_DAYS as u64 - 1);
        let days: Vec<NaiveDate> = match days {
            IndexDays::Recent => vec![today - chrono::Days::new(1), today],
            IndexDays::Series => first.iter_days().take(SERIES_DAYS as usize).collect(),
        };
        let residents = db::residents(tx).await?;
        let kept: HashMap<(String, NaiveDate), indices::IndexInputs> =
            db::indices_since(tx, days[0], None)
                .await?
                .into_iter()
                .filter_map(|r| Some(((r.region, r.day), serde_json::from_value(r.inputs).ok()?)))
                .collect();
        let mut changed = 0;
        for day in days {
            let start = china_time::start_of(day);
            let end = china_time::start_of(day + chrono::Days::new(1));
            let mut counts = db::index_inputs(tx, day, start, end).await?;
            for (region, r) in &residents {
                counts.entry(region.clone()).or_default().residents = r.count;
            }
            for (region, mut inputs) in counts {
                if county_of(&region).is_none() {
                    continue;
                }
                if day == today {
                    let now = residents.get(&region).copied().unwrap_or_default();
                    inputs.with_status = Some(now.with_status);
                    inputs.green = Some(now.green);
                } else if let Some(k) = kept.get(&(region.clone(), day)) {
                    inputs.with_status = k.with_status;
                    inputs.green = k.green;
                }
                if inputs == indices::IndexInputs::default() {
                    continue;
                }
                let i = indices::compute(&inputs, &self.settings);
                if db::upsert_indices(
                    tx,
                    &region,
                    day,
                    i.control,
                    i.flow,
                    &serde_json::to_value(&inputs)?,
                )
                .await?
                {
                    changed += 1;
                }
            }
        }
        Ok(changed)
    }
}

/// The reason an override puts first. The official's own words stay in the audit log: the map is public.
fn overridden(level: CountyLevel, o: &db::OverrideRow) -> MapReason {
    let until = china_time::day_of(o.until);
    MapReason {
        rule: "override".into(),
        zh: format!("经审核人工调整为{}，至{until}", level.zh()),
        en: format!("set to {level} by an official, until {until}"),
    }
}

/// Recomputes the levels `after_import_ms` after the projection stored imported facts (so that colours follow an
/// import within about a second), and the levels and the indices every `interval_ms` from start: today's and
/// yesterday's indices, or every day's at start and after trajectories or case lists arrived. The indices read
/// every visit of their days, which is why an import does not wait on them. The schedule keeps its own deadline,
/// so a steady stream of imports never starves it.
pub async fn run(map: Arc<CountyMap>, stop: CancellationToken) {
    let every = Duration::from_millis(map.settings.interval_ms);
    let settle = Duration::from_millis(map.settings.after_import_ms);
    let flag = &map.recolourer.past_days_changed;
    flag.store(true, Ordering::Relaxed);
    let mut due = tokio::time::Instant::now();
    let mut failures = 0u32;
    // From start: a replica whose rounds never succeed is stale 10 minutes after it started.
    metrics::gauge!("scoring_county_map_last_round_timestamp_seconds")
        .set(Utc::now().timestamp() as f64);
    loop {
        let scheduled = tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep_until(due) => true,
            () = map.recolourer.facts_arrived.notified() => {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(settle) => {}
                }
                tokio::time::Instant::now() >= due
            }
        };
        let started = Instant::now();
        let levels = match map.levels().await {
            Ok(Some(done)) if done.risks > 0 => map.recolour().await.map(|()| Some(done)),
            other => other,
        };
        let indices = match (&levels, scheduled) {
            (Ok(_), true) => {
                let days = if flag.swap(false, Ordering::Relaxed) {
                    IndexDays::Series
                } else {
                    IndexDays::Recent
                };
                let indices = map.indices(days).await;
                if days == IndexDays::Series && !matches!(indices, Ok(Some(_))) {
                    flag.store(true, Ordering::Relaxed);
                }
                indices
            }
            _ => Ok(Some(0)),
        };
        let failed = match (&levels, &indices) {
            (Err(err), _) | (_, Err(err)) => Some(err.to_string()),
            _ => None,
        };
        if let Some(err) = failed {
            // Backing off up to the interval: a fault that lasts (a bad row, PostgreSQL away) is not hammered.
            metrics::counter!("scoring_county_map_failures_total").increment(1);
            tracing::warn!(error = %err, "recomputing the county map failed; retrying");
            failures = (failures + 1).min(16);
            let wait =
                (settle.max(Duration::from_millis(100)) * 2u32.pow(failures.min(10))).min(every);
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
            if !scheduled {
                map.recolourer.facts_arrived.notify_one();
            }
            continue;
        }
        failures = 0;
        metrics::histogram!("scoring_county_map_recompute_seconds")
            .record(started.elapsed().as_secs_f64());
        // The alert CountyMapStale watches this (another replica's round counts: this one found it done).
        metrics::gauge!("scoring_county_map_last_round_timestamp_seconds")
            .set(Utc::now().timestamp() as f64);
        if scheduled {
            due = tokio::time::Instant::now() + every;
        }
        match levels {
            // Another replica holds the levels: it may have read the facts before this import; again shortly.
            Ok(None) => map.recolourer.facts_arrived.notify_one(),
            Ok(Some(done)) => {
                let indices = indices.ok().flatten().unwrap_or(0);
                if done != Recomputed::default() || indices > 0 {
                    tracing::info!(
                        levels = done.levels,
                        risks = done.risks,
                        indices,
                        "county map recomputed"
                    );
                }
            }
            Err(_) => {}
        }
    }
}
