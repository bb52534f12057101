//! Venue policies and the judgement at a gate: what a venue admits (a narrowing of the platform's colour rule,
//! never a widening), and the pure function that turns what is known of a person into pass or deny with the rule
//! that decided. No I/O here, so every deny reason is a unit test.

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use hc_domain::Colour;
use hc_token::dcc::{CertificateType, Verified};

use crate::certlogic;
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
    /// Whether, and which, EU Digital COVID Certificates (`HC1:`, an arrival's from abroad) are admitted; none: not
    /// admitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dcc: Option<DccPolicy>,
}

/// What a venue admits of an EU Digital COVID Certificate, beyond its signature, times and signer's key usage (which
/// every DCC must pass).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DccPolicy {
    /// The types admitted: one or more of `test`, `vaccination`, `recovery`.
    #[schema(value_type = Vec<String>, example = json!(["test", "vaccination"]))]
    pub accepts: Vec<CertificateType>,
    /// A test's sample was taken at most this many hours ago, 1 to 720 (none: any age, as rules allow).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 720)]
    pub test_within_hours: Option<u32>,
    /// A complete vaccination counts from this many days after its last dose, 0 to 365 (none: at once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(maximum = 365)]
    pub vaccination_after_days: Option<u32>,
    /// Business rules in CertLogic, the EU's format (at most 100): every rule for the certificate's type must hold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<certlogic::Rule>,
}

/// The most CertLogic rules a venue carries.
pub const MAX_DCC_RULES: usize = 100;

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
    if let Some(closed) = closed(policy, now) {
        return closed;
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

fn closed(policy: &Policy, now: DateTime<Utc>) -> Option<Verdict> {
    let hours = policy.hours.as_ref().filter(|h| !h.open_at(now))?;
    let (opens, closes) = (hours.opens.format("%H:%M"), hours.closes.format("%H:%M"));
    Some(Verdict::deny(
        "venue_closed",
        "venue.hours",
        format!("场所已关闭（开放时间 {opens}–{closes}）"),
        format!("the venue is closed (open {opens}–{closes})"),
    ))
}

/// SNOMED CT "not detected": the one test result that admits.
const TEST_NOT_DETECTED: &str = "260415000";

/// Judges an EU DCC that verified (signature, times, key usage) against a venue's policy at `now`: opening hours,
/// whether DCCs and this type are admitted, the type's own conditions, then the venue's CertLogic rules.
pub fn judge_dcc(policy: &Policy, dcc: &Verified, now: DateTime<Utc>) -> Verdict {
    if let Some(closed) = closed(policy, now) {
        return closed;
    }
    let Some(admits) = &policy.dcc else {
        return Verdict::deny(
            "dcc_not_admitted",
            "venue.dcc",
            "此场所不接受欧盟数字新冠证书".into(),
            "EU Digital COVID Certificates are not admitted here".into(),
        );
    };
    let certificate = &dcc.certificate;
    let Ok(kind) = certificate.kind() else {
        return Verdict::deny(
            "bad_certificate",
            "code",
            "证书无效".into(),
            "the certificate holds no single entry".into(),
        );
    };
    if !admits.accepts.contains(&kind) {
        return Verdict::deny(
            "certificate_type_not_admitted",
            "venue.dcc.accepts",
            format!("此场所不接受{}证书", zh_kind(kind)),
            format!("{} certificates are not admitted here", kind.name()),
        );
    }
    let today = hc_domain::china_time::day_of(now);
    let date =
        |text: &str| NaiveDate::parse_from_str(text.get(..10).unwrap_or(text), "%Y-%m-%d").ok();
    if let Some(test) = certificate.t.first() {
        if test.tr != TEST_NOT_DETECTED {
            return Verdict::deny(
                "test_not_negative",
                "dcc.test",
                "检测结果不是阴性".into(),
                "the test result is not negative".into(),
            );
        }
        if let Some(hours) = admits.test_within_hours {
            let taken = DateTime::parse_from_rfc3339(&test.sc).map(|t| t.with_timezone(&Utc));
            if !taken
                .is_ok_and(|t| t <= now && now - t <= chrono::Duration::hours(i64::from(hours)))
            {
                return Verdict::deny(
                    "test_too_old",
                    "venue.dcc.test_within_hours",
                    format!("需要 {hours} 小时内采样的阴性检测"),
                    format!("a negative test sampled within {hours} hours is required"),
                );
            }
        }
    }
    if let Some(vaccination) = certificate.v.first() {
        if vaccination.dn < vaccination.sd {
            return Verdict::deny(
                "vaccination_incomplete",
                "dcc.vaccination",
                "疫苗接种未完成".into(),
                "the vaccination series is not complete".into(),
            );
        }
        let after = i64::from(admits.vaccination_after_days.unwrap_or(0));
        // A date that does not parse counts as too recent: nothing says the dose was long enough ago.
        let counts_from = date(&vaccination.dt).map(|d| d + chrono::Duration::days(after));
        if counts_from.is_none_or(|from| today < from) {
            return Verdict::deny(
                "vaccination_too_recent",
                "venue.dcc.vaccination_after_days",
                format!("最后一剂接种需满 {after} 天"),
                format!("the last dose must be at least {after} days ago"),
            );
        }
    }
    if let Some(recovery) = certificate.r.first() {
        let valid = date(&recovery.df)
            .zip(date(&recovery.du))
            .is_some_and(|(from, until)| from <= today && today <= until);
        if !valid {
            return Verdict::deny(
                "recovery_not_valid",
                "dcc.recovery",
                "康复证明不在有效期内".into(),
                "the recovery certificate is not valid today".into(),
            );
        }
    }
    let rules: Vec<&certlogic::Rule> = admits.rules.iter().filter(|r| r.applies_to(kind)).collect();
    if !rules.is_empty() {
        let payload = serde_json::to_value(certificate).unwrap_or_default();
        let data = certlogic::data(payload, now, dcc.issued_at, dcc.expires_at);
        for rule in rules {
            // Checked when the policy was stored and compiled again here (an arrival's certificate is rare beside
            // codes); a rule that no longer compiles is not satisfied.
            let holds = rule
                .compile()
                .is_ok_and(|logic| certlogic::satisfied(&logic, &data));
            if !holds {
                return Verdict::deny(
                    "business_rule",
                    "venue.dcc.rules",
                    format!("不符合入境规则 {}：{}", rule.identifier, rule.text("zh")),
                    format!("rule {} is not met: {}", rule.identifier, rule.text("en")),
                );
            }
        }
    }
    Verdict {
        decision: Decision::Pass,
        reason: "admitted",
        rule: "venue.dcc",
        zh: format!("欧盟{}证书有效，准予通行", zh_kind(kind)),
        en: format!("valid EU {} certificate, admitted", kind.name()),
    }
}

fn zh_kind(kind: CertificateType) -> &'static str {
    match kind {
        CertificateType::Test => "检测",
        CertificateType::Vaccination => "疫苗接种",
        CertificateType::Recovery => "康复",
    }
}

/// Checks a policy against the platform's colour rule: it may admit fewer colours, never more. Names the field.
pub fn check(policy: &Policy, ceiling: &[Colour]) -> Result<(), (String, String)> {
    if policy.colours.is_empty() {
        return invalid("policy.colours", "must admit at least one colour");
    }
    let beyond = policy
        .colours
        .iter()
        .enumerate()
        .find(|(_, c)| !ceiling.contains(c));
    if let Some((i, c)) = beyond {
        let why = format!(
            "{c} is not admitted by the platform's colour rule; a venue can only narrow it"
        );
        return invalid(format!("policy.colours[{i}]"), why);
    }
    if policy
        .nat_within_hours
        .is_some_and(|h| !(1..=720).contains(&h))
    {
        return invalid("policy.nat_within_hours", "must be 1 to 720");
    }
    if policy
        .stale_max_minutes
        .is_some_and(|m| !(1..=1440).contains(&m))
    {
        return invalid("policy.stale_max_minutes", "must be 1 to 1440");
    }
    if policy.hours.as_ref().is_some_and(|h| h.opens == h.closes) {
        return invalid("policy.hours", "opens and closes must differ");
    }
    let Some(dcc) = &policy.dcc else {
        return Ok(());
    };
    if dcc.accepts.is_empty() {
        return invalid(
            "policy.dcc.accepts",
            "must admit at least one type (or leave dcc out)",
        );
    }
    if dcc
        .test_within_hours
        .is_some_and(|h| !(1..=720).contains(&h))
    {
        return invalid("policy.dcc.test_within_hours", "must be 1 to 720");
    }
    if dcc.vaccination_after_days.is_some_and(|d| d > 365) {
        return invalid("policy.dcc.vaccination_after_days", "must be 0 to 365");
    }
    if dcc.rules.len() > MAX_DCC_RULES {
        return invalid("policy.dcc.rules", format!("at most {MAX_DCC_RULES} rules"));
    }
    for (i, rule) in dcc.rules.iter().enumerate() {
        if let Err(why) = rule.compile() {
            let why = format!("is not CertLogic the engine accepts: {why}");
            return invalid(format!("policy.dcc.rules[{i}]"), why);
        }
    }
    Ok(())
}

/// A policy's fault: the field and what is wrong with it.
fn invalid(field: impl Into<String>, why: impl Into<String>) -> Result<(), (String, String)> {
    Err((field.into(), why.into()))
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
            dcc: None,
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
