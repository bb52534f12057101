//! The facts a rule can read: one JSON document per person, computed from the projection as of a day. This is the
//! whole vocabulary of the rule language (`KNOWN_FACTS`); a rule naming anything else is rejected when uploaded.
//!
//! The document is a pure function of the facts (in any order), the risk map and the day, which is what makes the
//! colour deterministic. A fact that does not exist reads as a `days_ago` of [`NEVER`] (and a `null` date), so
//! that `{"<=": [{"var": "close_contact.days_ago"}, 14]}` is simply false for someone never listed.

use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use hc_domain::CaseStatus;
use hc_domain::china_time::day_of;

/// `days_ago` of a fact that does not exist.
pub const NEVER: i64 = 9999;
/// `hours_ago` of a test that does not exist.
pub const NEVER_HOURS: i64 = 999_999;

/// Every path a rule may read with `var`.
pub static KNOWN_FACTS: std::sync::LazyLock<BTreeSet<String>> = std::sync::LazyLock::new(|| {
    let mut known: BTreeSet<String> = [
        "today",
        "home_region",
        "nat.positive.days_ago",
        "nat.positive.date",
        "nat.negative.hours_ago",
        "nat.negative.time",
        "nat.latest",
        "declaration.days_ago",
        "declaration.clean_streak",
        "declaration.fever.days_ago",
        "declaration.fever.date",
        "declaration.symptoms.days_ago",
        "declaration.symptoms.date",
        "declaration.contact.days_ago",
        "declaration.contact.date",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    // Every case-list status gets its own `{status}.days_ago`, `.date`, `.active` and `.region` (who reported the
    // latest listing) facts.
    for status in CaseStatus::ALL {
        known.insert(format!("{status}.region"));
        known.insert(format!("{status}.days_ago"));
        known.insert(format!("{status}.date"));
        known.insert(format!("{status}.active"));
    }
    for level in ["high", "medium"] {
        for leaf in ["days_ago", "date", "region", "hours", "count"] {
            known.insert(format!("visit.{level}.{leaf}"));
        }
    }
    known
});

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    strum::EnumString,
    strum::IntoStaticStr,
)]
#[strum(serialize_all = "lowercase")]
pub enum RiskLevel {
    Low,
    Medium,
    High,
}

impl RiskLevel {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// The risk level in effect of every region that has one, by numeric code. A county is as risky as the riskiest of
/// itself, its city and its province (a city declared high covers its counties).
#[derive(Debug, Clone, Default)]
pub struct RiskMap(HashMap<u32, RiskLevel>);

fn code_of(region: &str) -> Option<u32> {
    if region.len() == 6 {
        region.parse().ok()
    } else {
        None
    }
}

impl RiskMap {
    /// From region codes (six digits; anything else is ignored).
    pub fn new<'a>(levels: impl IntoIterator<Item = (&'a str, RiskLevel)>) -> Self {
        Self(
            levels
                .into_iter()
                .filter_map(|(r, l)| Some((code_of(r)?, l)))
                .collect(),
        )
    }

    pub fn level(&self, region: &str) -> RiskLevel {
        match code_of(region) {
            Some(code) if !self.0.is_empty() => self.level_of(code),
            _ => RiskLevel::Low,
        }
    }

    /// The level set for `region` itself (not inherited from its city or province).
    pub fn own(&self, region: &str) -> Option<RiskLevel> {
        self.0.get(&code_of(region)?).copied()
    }

    fn level_of(&self, code: u32) -> RiskLevel {
        hc_domain::enclosing_codes(code)
            .iter()
            .filter_map(|c| self.0.get(c).copied())
            .max()
            .unwrap_or(RiskLevel::Low)
    }

    /// The regions with a level set, as six-digit codes.
    pub fn entries(&self) -> impl Iterator<Item = (String, RiskLevel)> + '_ {
        self.0.iter().map(|(c, l)| (format!("{c:06}"), *l))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

// The short serde names keep the per-person digest (`subjects.digest`, a cache of these facts) small: it is read
// for every person of a bulk recolouring.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Declared {
    #[serde(rename = "d")]
    pub day: NaiveDate,
    #[serde(rename = "f")]
    pub fever: bool,
    #[serde(rename = "s")]
    pub symptoms: bool,
    #[serde(rename = "c", default, skip_serializing_if = "Option::is_none")]
    pub contact_date: Option<NaiveDate>,
}

impl Declared {
    fn clean(&self) -> bool {
        !self.fever && !self.symptoms && self.contact_date.is_none()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Listed {
    #[serde(rename = "k")]
    pub status: String,
    #[serde(rename = "s")]
    pub since: NaiveDate,
    #[serde(rename = "u", default, skip_serializing_if = "Option::is_none")]
    pub until: Option<NaiveDate>,
    /// The region that reported it, where known.
    #[serde(rename = "r", default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tested {
    #[serde(rename = "t")]
    pub sample_time: DateTime<Utc>,
    #[serde(rename = "p")]
    pub positive: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Visited {
    #[serde(rename = "r")]
    pub region: String,
    #[serde(rename = "f")]
    pub first_seen: DateTime<Utc>,
    #[serde(rename = "l")]
    pub last_seen: DateTime<Utc>,
}

/// Everything the projection holds about one person (within the lookback).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RawFacts {
    #[serde(rename = "d", default, skip_serializing_if = "Vec::is_empty")]
    pub declarations: Vec<Declared>,
    #[serde(rename = "c", default, skip_serializing_if = "Vec::is_empty")]
    pub cases: Vec<Listed>,
    #[serde(rename = "t", default, skip_serializing_if = "Vec::is_empty")]
    pub tests: Vec<Tested>,
    #[serde(rename = "v", default, skip_serializing_if = "Vec::is_empty")]
    pub visits: Vec<Visited>,
}

impl RawFacts {
    /// Drops what lies before the lookback, as the fact tables are read (cases are kept whatever their age: a case
    /// lasts until it is lifted). A digest built earlier holds a longer window; this makes it what a read now
    /// would return.
    pub fn within(mut self, since: DateTime<Utc>) -> Self {
        let since_day = day_of(since);
        self.declarations.retain(|d| d.day >= since_day);
        self.tests.retain(|t| t.sample_time >= since);
        self.visits.retain(|v| v.last_seen >= since);
        self
    }
}

fn days_between(earlier: NaiveDate, today: NaiveDate) -> i64 {
    (today - earlier).num_days().max(0)
}

/// The latest of some dated facts: (days ago, date), or (NEVER, null).
fn latest_day(days: impl Iterator<Item = NaiveDate>, today: NaiveDate) -> (i64, Value) {
    match days.filter(|d| *d <= today).max() {
        Some(day) => (days_between(day, today), Value::String(day.to_string())),
        None => (NEVER, Value::Null),
    }
}

fn object<const N: usize>(entries: [(&str, Value); N]) -> Value {
    let mut map = Map::with_capacity(N);
    for (k, v) in entries {
        map.insert(k.to_owned(), v);
    }
    Value::Object(map)
}

fn dated(days: i64, date: Value) -> Value {
    object([("days_ago", json!(days)), ("date", date)])
}

/// The fact document of one person as of `now` (its day in China). Built directly, without path parsing: it runs
/// once per person per recolouring.
pub fn document(raw: &RawFacts, home_region: &str, now: DateTime<Utc>, risk: &RiskMap) -> Value {
    let today = day_of(now);
    let mut doc = Map::with_capacity(20);
    doc.insert("today".into(), Value::String(today.to_string()));
    doc.insert("home_region".into(), json!(home_region));

    for status in CaseStatus::ALL.iter().map(|s| s.as_str()) {
        let mut active = false;
        let mut latest: Option<NaiveDate> = None;
        let mut region: Option<&str> = None;
        for c in raw.cases.iter().filter(|c| c.status == *status) {
            active |= c.since <= today && c.until.is_none_or(|u| u >= today);
            if c.since <= today && c.until.is_none_or(|u| u >= c.since) && Some(c.since) >= latest {
                // Of listings on the same day, the one whose region is known.
                if Some(c.since) > latest || region.is_none() {
                    region = c.region.as_deref();
                }
                latest = Some(c.since);
            }
        }
        let (days, date) = latest_day(latest.into_iter(), today);
        doc.insert(
            (*status).to_owned(),
            object([
                ("days_ago", json!(days)),
                ("date", date),
                ("active", json!(active)),
                ("region", json!(region)),
            ]),
        );
    }

    let (days, date) = latest_day(
        raw.tests
            .iter()
            .filter(|t| t.positive)
            .map(|t| day_of(t.sample_time)),
        today,
    );
    let negative = raw
        .tests
        .iter()
        .filter(|t| !t.positive && t.sample_time <= now)
        .map(|t| t.sample_time)
        .max();
    // The latest result; a positive and a negative sampled at the same instant count as positive.
    let latest = raw
        .tests
        .iter()
        .max_by_key(|t| (t.sample_time, t.positive))
        .map(|t| if t.positive { "positive" } else { "negative" });
    doc.insert(
        "nat".into(),
        object([
            ("positive", dated(days, date)),
            (
                "negative",
                object([
                    (
                        "hours_ago",
                        json!(negative.map_or(NEVER_HOURS, |t| (now - t).num_hours())),
                    ),
                    ("time", json!(negative)),
                ]),
            ),
            ("latest", json!(latest)),
        ]),
    );

    let d = &raw.declarations;
    let (fever_days, fever_date) = latest_day(d.iter().filter(|d| d.fever).map(|d| d.day), today);
    let (symptom_days, symptom_date) =
        latest_day(d.iter().filter(|d| d.symptoms).map(|d| d.day), today);
    let (contact_days, contact_date) = latest_day(d.iter().filter_map(|d| d.contact_date), today);
    let (latest_days, _) = latest_day(d.iter().map(|d| d.day), today);
    doc.insert(
        "declaration".into(),
        object([
            ("days_ago", json!(latest_days)),
            ("clean_streak", json!(clean_streak(d, today))),
            ("fever", dated(fever_days, fever_date)),
            ("symptoms", dated(symptom_days, symptom_date)),
            ("contact", dated(contact_days, contact_date)),
        ]),
    );

    let mut visit = Map::with_capacity(2);
    for (level, name) in [(RiskLevel::High, "high"), (RiskLevel::Medium, "medium")] {
        let at_level = || {
            raw.visits.iter().filter(move |v| {
                v.first_seen <= now && !risk.is_empty() && risk.level(&v.region) == level
            })
        };
        // The most recent visit; ties broken by region, then arrival, so the choice never depends on row order.
        let latest =
            at_level().max_by_key(|&v| (v.last_seen, Reverse(&v.region), Reverse(v.first_seen)));
        visit.insert(
            name.to_owned(),
            object([
                (
                    "days_ago",
                    json!(latest.map_or(NEVER, |v| days_between(day_of(v.last_seen), today))),
                ),
                ("date", json!(latest.map(|v| day_of(v.last_seen)))),
                ("region", json!(latest.map(|v| v.region.as_str()))),
                (
                    "hours",
                    json!(latest.map_or(0, |v| (v.last_seen - v.first_seen).num_hours())),
                ),
                ("count", json!(at_level().count())),
            ]),
        );
    }
    doc.insert("visit".into(), Value::Object(visit));
    Value::Object(doc)
}

/// Consecutive days, ending today (or yesterday, if today is not declared yet), with a declaration of no fever, no
/// symptoms and no contact. Hangzhou's rule: so many clean days in a row turn a code green.
pub fn clean_streak(declarations: &[Declared], today: NaiveDate) -> i64 {
    let mut by_day: HashMap<NaiveDate, bool> = HashMap::new();
    for d in declarations {
        // Two rows for one day (never after supersession, but be safe): unclean wins.
        *by_day.entry(d.day).or_insert(true) &= d.clean();
    }
    let mut day = if by_day.contains_key(&today) {
        today
    } else {
        today.pred_opt().unwrap_or(today)
    };
    let mut streak = 0;
    while by_day.get(&day) == Some(&true) {
        streak += 1;
        day = match day.pred_opt() {
            Some(d) => d,
            None => break,
        };
    }
    streak
}

/// Reads a fact by its dotted path.
pub fn lookup<'a>(doc: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(doc, |node, part| &node[part])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().expect("date")
    }

    fn noon(s: &str) -> DateTime<Utc> {
        format!("{s}T04:00:00Z").parse().expect("time")
    }

    #[test]
    fn a_digest_reads_back_as_the_same_facts_and_the_lookback_trims_it_like_the_tables() {
        let raw = RawFacts {
            declarations: vec![
                Declared {
                    day: day("2022-01-01"),
                    fever: false,
                    symptoms: false,
                    contact_date: None,
                },
                Declared {
                    day: day("2022-03-01"),
                    fever: true,
                    symptoms: false,
                    contact_date: Some(day("2022-02-27")),
                },
            ],
            cases: vec![Listed {
                status: "confirmed".into(),
                since: day("2021-12-01"),
                until: None,
                region: None,
            }],
            tests: vec![
                Tested {
                    sample_time: noon("2022-01-02"),
                    positive: false,
                },
                Tested {
                    sample_time: noon("2022-03-02"),
                    positive: true,
                },
            ],
            visits: vec![Visited {
                region: "610113".into(),
                first_seen: noon("2022-01-01"),
                last_seen: noon("2022-03-03"),
            }],
        };
        let digest = serde_json::to_string(&raw).expect("digest");
        let back: RawFacts = serde_json::from_str(&digest).expect("read back");
        assert_eq!(back, raw);
        let trimmed = back.within(noon("2022-02-01"));
        assert_eq!(
            trimmed.declarations.len(),
            1,
            "declarations before the day are dropped"
        );
        assert_eq!(trimmed.tests.len(), 1);
        assert_eq!(
            trimmed.visits.len(),
            1,
            "a visit counts by when it was last seen"
        );
        assert_eq!(trimmed.cases.len(), 1, "cases are kept whatever their age");
        assert_eq!(
            serde_json::to_string(&RawFacts::default()).expect("empty"),
            "{}"
        );
    }

    #[test]
    fn every_fact_in_the_document_is_in_the_vocabulary_and_back() {
        let doc = document(
            &RawFacts::default(),
            "440106",
            noon("2022-01-10"),
            &RiskMap::default(),
        );
        for path in KNOWN_FACTS.iter() {
            assert!(
                doc.pointer(&format!("/{}", path.replace('.', "/")))
                    .is_some(),
                "{path} missing"
            );
        }
    }

    #[test]
    fn streak_counts_clean_days_back_from_today_or_yesterday() {
        let clean = |d: &str| Declared {
            day: day(d),
            fever: false,
            symptoms: false,
            contact_date: None,
        };
        let decls = vec![
            clean("2022-01-07"),
            clean("2022-01-08"),
            clean("2022-01-09"),
            Declared {
                fever: true,
                ..clean("2022-01-05")
            },
            clean("2022-01-04"),
        ];
        assert_eq!(clean_streak(&decls, day("2022-01-09")), 3);
        assert_eq!(clean_streak(&decls, day("2022-01-10")), 3);
        assert_eq!(clean_streak(&decls, day("2022-01-11")), 0);
    }

    #[test]
    fn a_city_at_high_risk_covers_its_counties() {
        let risk = RiskMap::new([("610100", RiskLevel::High)]);
        assert_eq!(risk.level("610113"), RiskLevel::High);
        assert_eq!(risk.level("610200"), RiskLevel::Low);
    }
}
