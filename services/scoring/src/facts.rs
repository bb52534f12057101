//! The facts a rule can read: one JSON document per person, computed from the projection as of a day. This is the
//! whole vocabulary of the rule language (`KNOWN_FACTS`); a rule naming anything else is rejected when uploaded.
//!
//! The document is a pure function of the facts (in any order), the risk map and the day, which is what makes the
//! colour deterministic. A fact that does not exist reads as a `days_ago` of [`NEVER`] (and a `null` date), so
//! that `{"<=": [{"var": "close_contact.days_ago"}, 14]}` is simply false for someone never listed.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Map, Value, json};

use hc_domain::china_time::day_of;

/// `days_ago` of a fact that does not exist.
pub const NEVER: i64 = 9999;
/// `hours_ago` of a test that does not exist.
pub const NEVER_HOURS: i64 = 999_999;

/// Case-list statuses that each get their own `{status}.days_ago` fact.
pub const CASE_STATUSES: &[&str] = &[
    "confirmed",
    "asymptomatic",
    "suspected",
    "close_contact",
    "secondary_contact",
    "recovered",
    "inbound",
];

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
        "inbound.active",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    for status in CASE_STATUSES {
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RiskLevel {
    Low,
    Medium,
    High,
}

impl RiskLevel {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "low" => Some(RiskLevel::Low),
            "medium" => Some(RiskLevel::Medium),
            "high" => Some(RiskLevel::High),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RiskLevel::Low => "low",
            RiskLevel::Medium => "medium",
            RiskLevel::High => "high",
        }
    }
}

/// The risk level of every region that is not low. A county is as risky as the riskiest of itself, its city and
/// its province (a city declared high covers its counties).
#[derive(Debug, Clone, Default)]
pub struct RiskMap(pub HashMap<String, RiskLevel>);

impl RiskMap {
    pub fn level(&self, region: &str) -> RiskLevel {
        if self.0.is_empty() || region.len() != 6 {
            return RiskLevel::Low;
        }
        let city = format!("{}00", &region[..4]);
        let province = format!("{}0000", &region[..2]);
        [region, city.as_str(), province.as_str()]
            .iter()
            .filter_map(|r| self.0.get(*r).copied())
            .max()
            .unwrap_or(RiskLevel::Low)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Declared {
    pub day: NaiveDate,
    pub fever: bool,
    pub symptoms: bool,
    pub contact_date: Option<NaiveDate>,
}

impl Declared {
    fn clean(&self) -> bool {
        !self.fever && !self.symptoms && self.contact_date.is_none()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Listed {
    pub status: String,
    pub since: NaiveDate,
    pub until: Option<NaiveDate>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tested {
    pub sample_time: DateTime<Utc>,
    pub positive: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Visited {
    pub region: String,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
}

/// Everything the projection holds about one person.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawFacts {
    pub declarations: Vec<Declared>,
    pub cases: Vec<Listed>,
    pub tests: Vec<Tested>,
    pub visits: Vec<Visited>,
}

fn days_between(earlier: NaiveDate, today: NaiveDate) -> i64 {
    (today - earlier).num_days().max(0)
}

fn set(doc: &mut Map<String, Value>, path: &str, value: Value) {
    let mut parts = path.split('.').peekable();
    let mut node = doc;
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            node.insert(part.to_owned(), value);
            return;
        }
        node = node
            .entry(part.to_owned())
            .or_insert_with(|| Value::Object(Map::new()))
            .as_object_mut()
            .expect("fact paths never put a leaf where a branch goes");
    }
}

/// The latest of some dated facts: (days ago, date), or (NEVER, null).
fn latest_day(days: impl Iterator<Item = NaiveDate>, today: NaiveDate) -> (i64, Value) {
    match days.filter(|d| *d <= today).max() {
        Some(day) => (days_between(day, today), json!(day)),
        None => (NEVER, Value::Null),
    }
}

/// The fact document of one person as of `now` (its day in China).
pub fn document(raw: &RawFacts, home_region: &str, now: DateTime<Utc>, risk: &RiskMap) -> Value {
    let today = day_of(now);
    let mut doc = Map::new();
    set(&mut doc, "today", json!(today));
    set(&mut doc, "home_region", json!(home_region));

    for status in CASE_STATUSES {
        let listings = raw.cases.iter().filter(|c| c.status == *status);
        let active = listings
            .clone()
            .any(|c| c.since <= today && c.until.is_none_or(|u| u >= today));
        let (days, date) = latest_day(
            listings
                .filter(|c| c.until.is_none_or(|u| u >= c.since))
                .map(|c| c.since),
            today,
        );
        set(&mut doc, &format!("{status}.days_ago"), json!(days));
        set(&mut doc, &format!("{status}.date"), date);
        set(&mut doc, &format!("{status}.active"), json!(active));
    }
    let inbound = doc["inbound"]["active"].clone();
    set(&mut doc, "inbound.active", inbound);

    let positive = raw
        .tests
        .iter()
        .filter(|t| t.positive)
        .map(|t| day_of(t.sample_time));
    let (days, date) = latest_day(positive, today);
    set(&mut doc, "nat.positive.days_ago", json!(days));
    set(&mut doc, "nat.positive.date", date);
    let negative = raw
        .tests
        .iter()
        .filter(|t| !t.positive && t.sample_time <= now)
        .map(|t| t.sample_time)
        .max();
    set(
        &mut doc,
        "nat.negative.hours_ago",
        json!(negative.map_or(NEVER_HOURS, |t| (now - t).num_hours())),
    );
    set(&mut doc, "nat.negative.time", json!(negative));
    // The latest result; a positive and a negative sampled at the same instant count as positive.
    let latest = raw
        .tests
        .iter()
        .max_by_key(|t| (t.sample_time, t.positive))
        .map(|t| if t.positive { "positive" } else { "negative" });
    set(&mut doc, "nat.latest", json!(latest));

    let declared = |pick: fn(&Declared) -> Option<NaiveDate>| {
        latest_day(raw.declarations.iter().filter_map(pick), today)
    };
    for (name, pick) in [
        (
            "fever",
            (|d: &Declared| d.fever.then_some(d.day)) as fn(&Declared) -> Option<NaiveDate>,
        ),
        ("symptoms", |d: &Declared| d.symptoms.then_some(d.day)),
        ("contact", |d: &Declared| d.contact_date),
    ] {
        let (days, date) = declared(pick);
        set(
            &mut doc,
            &format!("declaration.{name}.days_ago"),
            json!(days),
        );
        set(&mut doc, &format!("declaration.{name}.date"), date);
    }
    let (days, _) = latest_day(raw.declarations.iter().map(|d| d.day), today);
    set(&mut doc, "declaration.days_ago", json!(days));
    set(
        &mut doc,
        "declaration.clean_streak",
        json!(clean_streak(&raw.declarations, today)),
    );

    for (level, name) in [(RiskLevel::High, "high"), (RiskLevel::Medium, "medium")] {
        let mut at_level: Vec<&Visited> = raw
            .visits
            .iter()
            .filter(|v| risk.level(&v.region) == level && v.first_seen <= now)
            .collect();
        // The most recent visit; ties broken by region so the choice never depends on row order.
        at_level.sort_by(|a, b| {
            (b.last_seen, &a.region, a.first_seen).cmp(&(a.last_seen, &b.region, b.first_seen))
        });
        let latest = at_level.first();
        set(
            &mut doc,
            &format!("visit.{name}.days_ago"),
            json!(latest.map_or(NEVER, |v| days_between(day_of(v.last_seen), today))),
        );
        set(
            &mut doc,
            &format!("visit.{name}.date"),
            json!(latest.map(|v| day_of(v.last_seen))),
        );
        set(
            &mut doc,
            &format!("visit.{name}.region"),
            json!(latest.map(|v| v.region.clone())),
        );
        set(
            &mut doc,
            &format!("visit.{name}.hours"),
            json!(latest.map_or(0, |v| (v.last_seen - v.first_seen).num_hours())),
        );
        set(
            &mut doc,
            &format!("visit.{name}.count"),
            json!(at_level.len()),
        );
    }
    Value::Object(doc)
}

/// Consecutive days, ending today (or yesterday, if today is not declared yet), with a declaration of no fever, no
/// symptoms and no contact. Hangzhou's rule: so many clean days in a row turn a code green.
pub fn clean_streak(declarations: &[Declared], today: NaiveDate) -> i64 {
    let by_day: HashMap<NaiveDate, bool> = declarations.iter().map(|d| (d.day, d.clean())).fold(
        HashMap::new(),
        |mut m, (day, clean)| {
            // Two rows for one day (never after supersession, but be safe): unclean wins.
            let e = m.entry(day).or_insert(true);
            *e &= clean;
            m
        },
    );
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
        let risk = RiskMap([("610100".to_owned(), RiskLevel::High)].into());
        assert_eq!(risk.level("610113"), RiskLevel::High);
        assert_eq!(risk.level("610200"), RiskLevel::Low);
    }
}
