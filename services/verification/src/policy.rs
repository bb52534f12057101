//! Venue policies and the judgement at a gate: what a venue admits (a narrowing of the platform's colour rule,
//! never a widening), and the pure function that turns what is known of a person into pass or deny with the rule
//! that decided. No I/O here, so every deny reason is a unit test.

use chrono::{DateTime, NaiveTime, Utc};
use hc_domain::Colour;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What a venue admits. Stored as JSON with the venue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Policy {
    /// Colours admitted: a subset of `verification.colour_ceiling` (the platform's colour rule).
    #[schema(value_type = Vec<String>, example = json!(["green"]))]
    pub colours: Vec<Colour>,
    /// A negative test within this many hours is required (none: no test required).
    pub nat_within_hours: Option<u32>,
    /// Whether inbound travellers' codes (the international variant) are admitted.
    pub international_admitted: bool,
    /// Opening hours in China time, `HH:MM` to `HH:MM` (closing after midnight when `closes` < `opens`); none:
    /// always open.
    pub hours: Option<Hours>,
    /// A code flagged stale (issued while scoring could not be reached) is refused when its status was last known
    /// to be current more than this many minutes ago, 1 to 1440; none: stale codes are judged like any other.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 1440)]
    pub stale_max_minutes: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Hours {
    #[schema(value_type = String, example = "08:00")]
    pub opens: NaiveTime,
    #[schema(value_type = String, example = "22:00")]
    pub closes: NaiveTime,
}

impl Hours {
    fn open_at(&self, at: DateTime<Utc>) -> bool {
        let t = at.with_timezone(&hc_domain::china_time::offset()).time();
        if self.opens <= self.closes {
            self.opens <= t && t < self.closes
        } else {
            t >= self.opens || t < self.closes
        }
    }
}

/// What is known of the person at the gate: from the code, and re-judged on the current status when it is newer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub colour: Colour,
    pub international: bool,
    pub negative_test_at: Option<DateTime<Utc>>,
    /// For a code flagged stale and judged on itself: when its status was last known to be current.
    pub stale_since: Option<DateTime<Utc>>,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, strum::IntoStaticStr,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum Decision {
    Pass,
    Deny,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Why: a stable code (metrics, screens, the scan record), the policy rule that decided, and text in Chinese and
/// English for the guard.
/// The codes are constants of this crate, never taken from input, so they are safe as metric labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub decision: Decision,
    pub reason: &'static str,
    /// The rule that decided: `venue.hours`, `venue.colours`, `venue.international_admitted`,
    /// `venue.nat_within_hours`, `code` (the code itself failed), or `venue.policy` (everything passed).
    pub rule: &'static str,
    pub zh: String,
    pub en: String,
}

impl Verdict {
    pub fn deny(reason: &'static str, rule: &'static str, zh: String, en: String) -> Self {
        Self {
            decision: Decision::Deny,
            reason,
            rule,
            zh,
            en,
        }
    }
}

/// Judges a person (whose code verified) against a venue's policy at `now`, checking in this order: opening
/// hours, the age of a stale code's status, colour, international variant, negative test.
pub fn judge(policy: &Policy, who: &Subject, now: DateTime<Utc>) -> Verdict {
    if let Some(hours) = policy.hours.as_ref().filter(|h| !h.open_at(now)) {
        return Verdict::deny(
            "venue_closed",
            "venue.hours",
            format!(
                "场所已关闭（开放时间 {}–{}）",
                hours.opens.format("%H:%M"),
                hours.closes.format("%H:%M")
            ),
            format!(
                "the venue is closed (open {}–{})",
                hours.opens.format("%H:%M"),
                hours.closes.format("%H:%M")
            ),
        );
    }
    if let (Some(max), Some(since)) = (policy.stale_max_minutes, who.stale_since)
        && now - since > chrono::Duration::minutes(i64::from(max))
    {
        return Verdict::deny(
            "stale_too_old",
            "venue.stale_max_minutes",
            format!("健康码状态已超过 {max} 分钟未更新，请刷新后出示"),
            format!("the code's status is more than {max} minutes old; show a fresh code"),
        );
    }
    if !policy.colours.contains(&who.colour) {
        return Verdict::deny(
            "colour_not_admitted",
            "venue.colours",
            format!("{}不可进入此场所", who.colour.zh_code()),
            format!("a {} code is not admitted here", who.colour),
        );
    }
    if who.international && !policy.international_admitted {
        return Verdict::deny(
            "international_not_admitted",
            "venue.international_admitted",
            "此场所不接受入境人员健康码".into(),
            "inbound travellers' codes are not admitted here".into(),
        );
    }
    if let Some(hours) = policy.nat_within_hours {
        let fresh = who
            .negative_test_at
            .is_some_and(|t| now - t <= chrono::Duration::hours(i64::from(hours)));
        if !fresh {
            let reason = if who.negative_test_at.is_some() {
                "nat_too_old"
            } else {
                "no_negative_test"
            };
            return Verdict::deny(
                reason,
                "venue.nat_within_hours",
                format!("需要 {hours} 小时内核酸阴性证明"),
                format!("a negative test within {hours} hours is required"),
            );
        }
    }
    Verdict {
        decision: Decision::Pass,
        reason: "admitted",
        rule: "venue.policy",
        zh: format!("{}，准予通行", who.colour.zh_code()),
        en: format!("{} code, admitted", who.colour),
    }
}

/// Checks a policy against the platform's colour rule: it may admit fewer colours, never more. Names the field.
pub fn check(policy: &Policy, ceiling: &[Colour]) -> Result<(), (String, String)> {
    if policy.colours.is_empty() {
        return Err((
            "policy.colours".into(),
            "must admit at least one colour".into(),
        ));
    }
    for (i, c) in policy.colours.iter().enumerate() {
        if !ceiling.contains(c) {
            return Err((
                format!("policy.colours[{i}]"),
                format!(
                    "{c} is not admitted by the platform's colour rule; a venue can only narrow it"
                ),
            ));
        }
    }
    if policy
        .nat_within_hours
        .is_some_and(|h| !(1..=720).contains(&h))
    {
        return Err(("policy.nat_within_hours".into(), "must be 1 to 720".into()));
    }
    if policy
        .stale_max_minutes
        .is_some_and(|m| !(1..=1440).contains(&m))
    {
        return Err((
            "policy.stale_max_minutes".into(),
            "must be 1 to 1440".into(),
        ));
    }
    if policy.hours.as_ref().is_some_and(|h| h.opens == h.closes) {
        return Err(("policy.hours".into(), "opens and closes must differ".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn policy() -> Policy {
        Policy {
            colours: vec![Colour::Green],
            nat_within_hours: Some(48),
            international_admitted: false,
            hours: Some(Hours {
                opens: NaiveTime::from_hms_opt(8, 0, 0).expect("time"),
                closes: NaiveTime::from_hms_opt(22, 0, 0).expect("time"),
            }),
            stale_max_minutes: None,
        }
    }

    /// 2022-01-04 12:00 China time.
    fn noon() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2022, 1, 4, 4, 0, 0)
            .single()
            .expect("time")
    }

    fn green(tested_hours_ago: Option<i64>) -> Subject {
        Subject {
            colour: Colour::Green,
            international: false,
            negative_test_at: tested_hours_ago.map(|h| noon() - chrono::Duration::hours(h)),
            stale_since: None,
        }
    }

    #[test]
    fn a_green_code_with_a_recent_test_passes_in_opening_hours() {
        let v = judge(&policy(), &green(Some(47)), noon());
        assert_eq!((v.decision, v.rule), (Decision::Pass, "venue.policy"));
        // The boundary: exactly 48 hours is within.
        assert_eq!(
            judge(&policy(), &green(Some(48)), noon()).decision,
            Decision::Pass
        );
    }

    #[test]
    fn each_policy_rule_denies_with_its_own_reason() {
        let p = policy();
        let closed = judge(&p, &green(Some(1)), noon() + chrono::Duration::hours(10));
        assert_eq!(
            (closed.reason, closed.rule),
            ("venue_closed", "venue.hours")
        );
        let yellow = Subject {
            colour: Colour::Yellow,
            ..green(Some(1))
        };
        assert_eq!(judge(&p, &yellow, noon()).reason, "colour_not_admitted");
        let inbound = Subject {
            international: true,
            ..green(Some(1))
        };
        assert_eq!(
            judge(&p, &inbound, noon()).reason,
            "international_not_admitted"
        );
        assert_eq!(judge(&p, &green(Some(49)), noon()).reason, "nat_too_old");
        assert_eq!(judge(&p, &green(None), noon()).reason, "no_negative_test");
    }

    #[test]
    fn a_stale_code_is_refused_only_past_the_venues_limit() {
        let p = Policy {
            stale_max_minutes: Some(30),
            ..policy()
        };
        let stale = |minutes| Subject {
            stale_since: Some(noon() - chrono::Duration::minutes(minutes)),
            ..green(Some(1))
        };
        assert_eq!(judge(&p, &stale(20), noon()).decision, Decision::Pass);
        assert_eq!(judge(&p, &stale(31), noon()).reason, "stale_too_old");
        assert_eq!(
            judge(&policy(), &stale(600), noon()).decision,
            Decision::Pass
        );
        let zero = Policy {
            stale_max_minutes: Some(0),
            ..policy()
        };
        assert_eq!(
            check(&zero, &[Colour::Green]).expect_err("zero").0,
            "policy.stale_max_minutes"
        );
    }

    #[test]
    fn hours_across_midnight_are_open_on_both_sides_of_it() {
        let night = Policy {
            hours: Some(Hours {
                opens: NaiveTime::from_hms_opt(20, 0, 0).expect("time"),
                closes: NaiveTime::from_hms_opt(2, 0, 0).expect("time"),
            }),
            nat_within_hours: None,
            ..policy()
        };
        // 23:00 and 01:00 China time open, noon closed.
        assert_eq!(
            judge(&night, &green(None), noon() + chrono::Duration::hours(11)).decision,
            Decision::Pass
        );
        assert_eq!(
            judge(&night, &green(None), noon() + chrono::Duration::hours(13)).decision,
            Decision::Pass
        );
        assert_eq!(judge(&night, &green(None), noon()).reason, "venue_closed");
    }

    #[test]
    fn a_policy_can_narrow_the_colour_rule_but_never_widen_it() {
        let ceiling = [Colour::Green, Colour::Yellow, Colour::Orange];
        assert!(check(&policy(), &ceiling).is_ok());
        let red = Policy {
            colours: vec![Colour::Green, Colour::Red],
            ..policy()
        };
        assert_eq!(
            check(&red, &ceiling).expect_err("widens").0,
            "policy.colours[1]"
        );
        let none = Policy {
            colours: vec![],
            ..policy()
        };
        assert_eq!(
            check(&none, &ceiling).expect_err("empty").0,
            "policy.colours"
        );
    }
}
