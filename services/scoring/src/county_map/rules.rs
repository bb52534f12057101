//! The published rules of the five-colour county map (docs/indices.md §1): a county's level from the facts of the
//! 14 days to today, with the reasons in both languages, and the three-level risk each level means for the colour
//! rules.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::facts::RiskLevel;
use crate::settings::CountyMapSettings;

/// Zhejiang's five levels, from low to high.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    ToSchema,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum CountyLevel {
    Green,
    Blue,
    Yellow,
    Orange,
    Red,
}

impl CountyLevel {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn zh(self) -> &'static str {
        match self {
            CountyLevel::Green => "绿色",
            CountyLevel::Blue => "蓝色",
            CountyLevel::Yellow => "黄色",
            CountyLevel::Orange => "橙色",
            CountyLevel::Red => "红色",
        }
    }

    /// The three-level risk the colour rules read: red and orange are high, yellow medium, blue and green low.
    pub fn risk(self) -> RiskLevel {
        match self {
            CountyLevel::Red | CountyLevel::Orange => RiskLevel::High,
            CountyLevel::Yellow => RiskLevel::Medium,
            CountyLevel::Blue | CountyLevel::Green => RiskLevel::Low,
        }
    }
}

/// What the rules read of one county: distinct people, by their home county (or, for a person not registered
/// here, the county that reported the case entry).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CountyFacts {
    /// Confirmed or asymptomatic case entries beginning in the 14 days to today.
    pub cases_14d: i64,
    /// Of those, beginning in the last 7 days, and in the 7 days before.
    pub cases_last_7d: i64,
    pub cases_prior_7d: i64,
    /// Case entries beginning 15 to 28 days ago.
    pub cases_15_to_28d: i64,
    /// Residents with a positive nucleic-acid sample in the last 14 days.
    pub positives_14d: i64,
    /// Close-contact entries beginning in the 14 days to today.
    pub contacts_14d: i64,
}

impl CountyFacts {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    fn rising(&self) -> bool {
        self.cases_last_7d > self.cases_prior_7d
    }
}

/// Why a county has its level: the rule's name and its text in Chinese and English, as a colour's reasons are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MapReason {
    pub rule: String,
    pub zh: String,
    pub en: String,
}

/// "1 case", "2 cases".
fn count(n: i64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

fn reason(rule: &str, zh: String, en: String) -> MapReason {
    MapReason {
        rule: rule.into(),
        zh,
        en,
    }
}

/// The level the published rules give, the first that holds from red down, and every reason that holds at that
/// level.
pub fn judge(f: &CountyFacts, t: &CountyMapSettings) -> (CountyLevel, Vec<MapReason>) {
    let cases = f.cases_14d;
    let trend = || {
        reason(
            "rising",
            format!(
                "近7天病例{}例，多于此前7天的{}例",
                f.cases_last_7d, f.cases_prior_7d
            ),
            format!(
                "{} in the last 7 days against {} the 7 days before",
                count(f.cases_last_7d, "case"),
                f.cases_prior_7d
            ),
        )
    };
    let many = |rule: &str, at_least: i64| {
        reason(
            rule,
            format!("近14天病例{cases}例（不少于{at_least}例）"),
            format!(
                "{} in the last 14 days (at least {at_least})",
                count(cases, "case")
            ),
        )
    };
    if cases >= t.red_cases {
        return (CountyLevel::Red, vec![many("red-cases", t.red_cases)]);
    }
    if cases >= t.red_rising_cases && f.rising() {
        return (
            CountyLevel::Red,
            vec![many("red-rising", t.red_rising_cases), trend()],
        );
    }
    if cases >= t.orange_cases {
        return (
            CountyLevel::Orange,
            vec![many("orange-cases", t.orange_cases)],
        );
    }
    if cases >= t.orange_rising_cases && f.rising() {
        return (
            CountyLevel::Orange,
            vec![many("orange-rising", t.orange_rising_cases), trend()],
        );
    }
    let mut yellow = Vec::new();
    if cases >= 1 {
        yellow.push(many("yellow-cases", 1));
    }
    if f.positives_14d >= 1 {
        yellow.push(reason(
            "yellow-positive",
            format!("近14天核酸阳性{}人", f.positives_14d),
            format!(
                "{} tested positive in the last 14 days",
                count(f.positives_14d, "resident")
            ),
        ));
    }
    if !yellow.is_empty() {
        return (CountyLevel::Yellow, yellow);
    }
    let mut blue = Vec::new();
    if f.contacts_14d >= 1 {
        blue.push(reason(
            "blue-contacts",
            format!("近14天密切接触者{}人", f.contacts_14d),
            format!(
                "{} listed in the last 14 days",
                count(f.contacts_14d, "close contact")
            ),
        ));
    }
    if f.cases_15_to_28d >= 1 {
        blue.push(reason(
            "blue-recent",
            format!("15至28天前病例{}例", f.cases_15_to_28d),
            format!("{} 15 to 28 days ago", count(f.cases_15_to_28d, "case")),
        ));
    }
    if !blue.is_empty() {
        return (CountyLevel::Blue, blue);
    }
    (CountyLevel::Green, Vec::new())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The shipped thresholds, as docs/indices.md publishes them.
    pub(crate) fn thresholds() -> CountyMapSettings {
        config::Config::builder()
            .add_source(config::File::from_str(
                crate::DEFAULT_CONFIG,
                config::FileFormat::Toml,
            ))
            .build()
            .and_then(|c| c.get("scoring.county_map"))
            .expect("county_map settings")
    }

    fn level(f: CountyFacts) -> (CountyLevel, Vec<String>) {
        let (level, reasons) = judge(&f, &thresholds());
        (level, reasons.into_iter().map(|r| r.rule).collect())
    }

    #[test]
    fn each_rule_gives_its_level_and_the_first_that_holds_wins() {
        let cases = |n, last, prior| CountyFacts {
            cases_14d: n,
            cases_last_7d: last,
            cases_prior_7d: prior,
            ..Default::default()
        };
        assert_eq!(level(cases(50, 20, 30)).0, CountyLevel::Red);
        assert_eq!(level(cases(49, 20, 29)).0, CountyLevel::Orange);
        assert_eq!(
            level(cases(10, 6, 4)),
            (CountyLevel::Red, vec!["red-rising".into(), "rising".into()])
        );
        assert_eq!(level(cases(10, 5, 5)).0, CountyLevel::Orange);
        assert_eq!(
            level(cases(3, 2, 1)),
            (
                CountyLevel::Orange,
                vec!["orange-rising".into(), "rising".into()]
            )
        );
        assert_eq!(level(cases(3, 1, 2)).0, CountyLevel::Yellow);
        assert_eq!(level(cases(1, 1, 0)).0, CountyLevel::Yellow);
        let positives = CountyFacts {
            positives_14d: 1,
            contacts_14d: 4,
            ..Default::default()
        };
        assert_eq!(
            level(positives),
            (CountyLevel::Yellow, vec!["yellow-positive".into()])
        );
        let contacts = CountyFacts {
            contacts_14d: 1,
            cases_15_to_28d: 2,
            ..Default::default()
        };
        assert_eq!(
            level(contacts),
            (
                CountyLevel::Blue,
                vec!["blue-contacts".into(), "blue-recent".into()]
            )
        );
        assert_eq!(level(CountyFacts::default()), (CountyLevel::Green, vec![]));
    }

    #[test]
    fn the_five_levels_map_onto_the_three_the_colour_rules_read() {
        use CountyLevel::*;
        let risks: Vec<_> = [Green, Blue, Yellow, Orange, Red]
            .iter()
            .map(|l| l.risk())
            .collect();
        assert_eq!(
            risks,
            [
                RiskLevel::Low,
                RiskLevel::Low,
                RiskLevel::Medium,
                RiskLevel::High,
                RiskLevel::High
            ]
        );
        assert!(Green < Blue && Blue < Yellow && Yellow < Orange && Orange < Red);
        assert_eq!("orange".parse::<CountyLevel>().ok(), Some(Orange));
    }

    #[test]
    fn reasons_name_the_counts_in_both_languages() {
        let (_, reasons) = judge(
            &CountyFacts {
                cases_14d: 12,
                cases_last_7d: 2,
                cases_prior_7d: 10,
                ..Default::default()
            },
            &thresholds(),
        );
        assert_eq!(reasons[0].en, "12 cases in the last 14 days (at least 10)");
        assert_eq!(reasons[0].zh, "近14天病例12例（不少于10例）");
    }
}
