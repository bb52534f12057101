//! CertLogic, the EU's language for DCC business rules (a JsonLogic subset with date operators, as in the member
//! states' published rule sets), run on the engine the colour rules use (datalogic-rs) with CertLogic's operators
//! added: `plusTime`, `before`, `not-before`, `after`, `not-after`, `extractFromUVCI` and `dccDateOfBirth`.
//! A rule sees `{"payload": <the DCC as JSON>, "external": {"validationClock", "iat", "exp", "countryCode"}}`.

use std::cmp::Ordering;
use std::sync::LazyLock;

use chrono::{DateTime, Datelike, Duration, Months, NaiveDate, NaiveDateTime, SecondsFormat, Utc};
use datalogic_rs::bumpalo::Bump;
use datalogic_rs::operator::EvalContext;
use datalogic_rs::{ArenaExt, CustomOperator, DataValue, Engine, Error, Logic};
use hc_token::dcc::CertificateType;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

static ENGINE: LazyLock<Engine> = LazyLock::new(|| {
    Engine::builder()
        .add_operator("plusTime", PlusTime)
        .add_operator("before", Compare(&[Ordering::Less]))
        .add_operator("not-after", Compare(&[Ordering::Less, Ordering::Equal]))
        .add_operator("after", Compare(&[Ordering::Greater]))
        .add_operator("not-before", Compare(&[Ordering::Greater, Ordering::Equal]))
        .add_operator("extractFromUVCI", ExtractFromUvci)
        .add_operator("dccDateOfBirth", DccDateOfBirth)
        .build()
});

/// One business rule in the EU's rule format (only the fields the judgement uses are required).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Rule {
    /// For example `VR-EU-0001`; named in the deny reason.
    #[serde(rename = "Identifier")]
    pub identifier: String,
    /// `General`, `Test`, `Vaccination` or `Recovery`: the certificates the rule applies to.
    #[serde(rename = "CertificateType")]
    pub certificate_type: String,
    /// What the rule requires, by language (`{"lang": "en", "desc": …}`).
    #[serde(rename = "Description", default)]
    pub description: Vec<Description>,
    /// The CertLogic expression: true when the certificate satisfies the rule.
    #[serde(rename = "Logic")]
    #[schema(value_type = Object)]
    pub logic: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Description {
    pub lang: String,
    pub desc: String,
}

impl Rule {
    /// Whether it applies to a certificate of this type.
    pub fn applies_to(&self, kind: CertificateType) -> bool {
        let wanted = match kind {
            CertificateType::Test => "Test",
            CertificateType::Vaccination => "Vaccination",
            CertificateType::Recovery => "Recovery",
        };
        self.certificate_type == "General" || self.certificate_type == wanted
    }

    /// The rule's description in a language, else in English, else its identifier.
    pub fn text(&self, lang: &str) -> String {
        let find = |l: &str| {
            self.description
                .iter()
                .find(|d| d.lang == l)
                .map(|d| d.desc.clone())
        };
        find(lang)
            .or_else(|| find("en"))
            .unwrap_or_else(|| self.identifier.clone())
    }

    pub fn compile(&self) -> Result<Logic, String> {
        if !["General", "Test", "Vaccination", "Recovery"].contains(&self.certificate_type.as_str())
        {
            return Err("CertificateType must be General, Test, Vaccination or Recovery".into());
        }
        only_certlogic(&self.logic)?;
        ENGINE.compile(&self.logic).map_err(|e| e.to_string())
    }
}

/// CertLogic's operations (its specification, version 1.3): the JsonLogic ones it keeps and its own. The engine
/// knows more (and compiles any name, failing only when run), so a rule is held to these when it is stored.
const OPERATIONS: [&str; 19] = [
    "var",
    "if",
    "===",
    "and",
    "<",
    ">",
    "<=",
    ">=",
    "in",
    "+",
    "!",
    "reduce",
    "plusTime",
    "before",
    "not-before",
    "after",
    "not-after",
    "extractFromUVCI",
    "dccDateOfBirth",
];

fn only_certlogic(logic: &serde_json::Value) -> Result<(), String> {
    match logic {
        serde_json::Value::Array(items) => items.iter().try_for_each(only_certlogic),
        serde_json::Value::Object(operation) => {
            let mut entries = operation.iter();
            match (entries.next(), entries.next()) {
                (Some((name, args)), None) if OPERATIONS.contains(&name.as_str()) => {
                    only_certlogic(args)
                }
                (Some((name, _)), None) => Err(format!("{name} is not a CertLogic operation")),
                _ => Err("an operation is an object of one key".into()),
            }
        }
        _ => Ok(()),
    }
}

/// Runs a compiled rule: a rule whose evaluation fails (a missing field, a date that does not parse) is not
/// satisfied, as the EU's validators treat it.
pub fn satisfied(logic: &Logic, data: &serde_json::Value) -> bool {
    let arena = Bump::new();
    ENGINE
        .evaluate(logic, data, &arena)
        .is_ok_and(|v| ENGINE.truthy(v))
}

/// What a rule sees: the certificate and the verifier's context.
pub fn data(
    payload: serde_json::Value,
    now: DateTime<Utc>,
    issued_at: i64,
    expires_at: i64,
) -> serde_json::Value {
    let time = |micros: i64| DateTime::from_timestamp_micros(micros).map(format_time);
    serde_json::json!({
        "payload": payload,
        "external": {
            "validationClock": format_time(now),
            "iat": time(issued_at),
            "exp": time(expires_at),
            "countryCode": "CN",
            "valueSets": {},
        },
    })
}

fn format_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// A date and time as the EU's DCC data writes them: RFC 3339, or with an offset without a colon (`+0000`), or with
/// no offset at all (taken as UTC, as the reference validators do). The test cases' clocks are read the same way.
pub fn parse_date_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .or_else(|_| DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
                .ok()
                .map(|t| t.and_utc())
        })
}

/// A CertLogic date-time: a date and time as above, or a date alone (its midnight, UTC).
fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    parse_date_time(text).or_else(|| {
        NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| t.and_utc())
    })
}

fn time_arg(value: &DataValue<'_>, operator: &str) -> Result<DateTime<Utc>, Error> {
    value
        .as_str()
        .and_then(parse_time)
        .ok_or_else(|| Error::invalid_arguments(format!("{operator} takes date-times")))
}

/// `plusTime: [date-time, amount, "year" | "month" | "day" | "hour"]`.
struct PlusTime;

impl CustomOperator for PlusTime {
    fn evaluate<'a>(
        &self,
        args: &[&'a DataValue<'a>],
        _ctx: &mut EvalContext<'_, 'a>,
        arena: &'a Bump,
    ) -> datalogic_rs::Result<&'a DataValue<'a>> {
        let [time, amount, unit] = args else {
            return Err(Error::invalid_arguments(
                "plusTime takes a date-time, an amount and a unit",
            ));
        };
        let time = time_arg(time, "plusTime")?;
        let amount = amount
            .as_i64()
            .ok_or_else(|| Error::invalid_arguments("plusTime's amount is an integer"))?;
        let months = |n: i64| -> Option<DateTime<Utc>> {
            let months = Months::new(u32::try_from(n.unsigned_abs()).ok()?);
            if n >= 0 {
                time.checked_add_months(months)
            } else {
                time.checked_sub_months(months)
            }
        };
        let shifted = match unit.as_str() {
            Some("year") => amount.checked_mul(12).and_then(months),
            Some("month") => months(amount),
            Some("day") => Duration::try_days(amount).and_then(|d| time.checked_add_signed(d)),
            Some("hour") => Duration::try_hours(amount).and_then(|d| time.checked_add_signed(d)),
            _ => {
                return Err(Error::invalid_arguments(
                    "plusTime's unit is year, month, day or hour",
                ));
            }
        }
        .ok_or_else(|| Error::invalid_arguments("plusTime leaves the calendar"))?;
        Ok(arena.string(&format_time(shifted)))
    }
}

/// `before`, `not-after`, `after`, `not-before`: two or three date-times, each pair in order.
struct Compare(&'static [Ordering]);

impl CustomOperator for Compare {
    fn evaluate<'a>(
        &self,
        args: &[&'a DataValue<'a>],
        _ctx: &mut EvalContext<'_, 'a>,
        arena: &'a Bump,
    ) -> datalogic_rs::Result<&'a DataValue<'a>> {
        if !(2..=3).contains(&args.len()) {
            return Err(Error::invalid_arguments(
                "a date comparison takes 2 or 3 date-times",
            ));
        }
        let times = args
            .iter()
            .map(|a| time_arg(a, "a date comparison"))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(arena.bool(times.windows(2).all(|w| self.0.contains(&w[0].cmp(&w[1])))))
    }
}

/// `extractFromUVCI: [uvci, index]`: the index-th fragment of a certificate identifier, split at `/`, `#` and `:`
/// after an optional `URN:UVCI:`; null when there is none.
struct ExtractFromUvci;

impl CustomOperator for ExtractFromUvci {
    fn evaluate<'a>(
        &self,
        args: &[&'a DataValue<'a>],
        _ctx: &mut EvalContext<'_, 'a>,
        arena: &'a Bump,
    ) -> datalogic_rs::Result<&'a DataValue<'a>> {
        let [uvci, index] = args else {
            return Err(Error::invalid_arguments(
                "extractFromUVCI takes a string and an index",
            ));
        };
        let index = index
            .as_i64()
            .and_then(|i| usize::try_from(i).ok())
            .ok_or_else(|| {
                Error::invalid_arguments("extractFromUVCI's index is a non-negative integer")
            })?;
        let Some(uvci) = uvci.as_str() else {
            return Ok(arena.null());
        };
        let body = uvci.strip_prefix("URN:UVCI:").unwrap_or(uvci);
        Ok(match body.split(['/', '#', ':']).nth(index) {
            Some(fragment) => arena.string(fragment),
            None => arena.null(),
        })
    }
}

/// `dccDateOfBirth: [dob]`: a date of birth as a date-time; a partial one (YYYY-MM, YYYY) is its period's last day,
/// so an age rule never admits someone too young.
struct DccDateOfBirth;

impl CustomOperator for DccDateOfBirth {
    fn evaluate<'a>(
        &self,
        args: &[&'a DataValue<'a>],
        _ctx: &mut EvalContext<'_, 'a>,
        arena: &'a Bump,
    ) -> datalogic_rs::Result<&'a DataValue<'a>> {
        let bad = || Error::invalid_arguments("dccDateOfBirth takes YYYY-MM-DD, YYYY-MM or YYYY");
        let [dob] = args else { return Err(bad()) };
        let dob = dob.as_str().ok_or_else(bad)?;
        let parts: Vec<&str> = dob.split('-').collect();
        let number = |i: usize| parts.get(i).and_then(|p| p.parse::<u32>().ok());
        let date = match parts.len() {
            3 => NaiveDate::from_ymd_opt(
                i32::try_from(number(0).ok_or_else(bad)?).map_err(|_| bad())?,
                number(1).ok_or_else(bad)?,
                number(2).ok_or_else(bad)?,
            ),
            2 | 1 => {
                let year = i32::try_from(number(0).ok_or_else(bad)?).map_err(|_| bad())?;
                let month = if parts.len() == 2 {
                    number(1).ok_or_else(bad)?
                } else {
                    12
                };
                // The month's last day: the day before the next month's first.
                NaiveDate::from_ymd_opt(year, month, 1)
                    .and_then(|first| first.checked_add_months(Months::new(1)))
                    .and_then(|next| next.pred_opt())
            }
            _ => None,
        }
        .filter(|d| d.year() > 0)
        .ok_or_else(bad)?;
        let midnight = date.and_hms_opt(0, 0, 0).ok_or_else(bad)?.and_utc();
        Ok(arena.string(&format_time(midnight)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(logic: serde_json::Value, data: serde_json::Value) -> serde_json::Value {
        let compiled = ENGINE.compile(&logic).expect("compiles");
        let arena = Bump::new();
        let value = ENGINE
            .evaluate(&compiled, &data, &arena)
            .expect("evaluates");
        serde_json::to_value(value).expect("JSON")
    }

    /// The EU's vaccination rule VR-EU-0003 in spirit: 14 days after the last dose.
    #[test]
    fn a_rule_on_days_since_vaccination_reads_the_payload_and_the_clock() {
        let rule = json!({"not-before": [
            {"plusTime": [{"var": "external.validationClock"}, 0, "day"]},
            {"plusTime": [{"var": "payload.v.0.dt"}, 14, "day"]}]});
        let at = |clock: &str| json!({"payload": {"v": [{"dt": "2021-05-01"}]}, "external": {"validationClock": clock}});
        assert_eq!(run(rule.clone(), at("2021-05-15T00:00:00Z")), json!(true));
        assert_eq!(run(rule.clone(), at("2021-05-14T23:59:59Z")), json!(false));
        assert_eq!(run(rule, at("2021-05-15T07:59:59+08:00")), json!(false));
    }

    #[test]
    fn the_date_operators_chain_and_shift_by_calendar_units() {
        assert_eq!(
            run(json!({"plusTime": ["2020-01-31", 1, "month"]}), json!({})),
            json!("2020-02-29T00:00:00.000000Z")
        );
        assert_eq!(
            run(
                json!({"plusTime": ["2021-06-01T12:00:00Z", -36, "hour"]}),
                json!({})
            ),
            json!("2021-05-31T00:00:00.000000Z")
        );
        assert_eq!(
            run(
                json!({"before": ["2021-01-01", "2021-01-02", "2021-01-03"]}),
                json!({})
            ),
            json!(true)
        );
        assert_eq!(
            run(
                json!({"before": ["2021-01-01", "2021-01-03", "2021-01-02"]}),
                json!({})
            ),
            json!(false)
        );
        assert_eq!(
            run(
                json!({"not-after": ["2021-01-01", "2021-01-01"]}),
                json!({})
            ),
            json!(true)
        );
        assert_eq!(
            run(json!({"after": ["2021-01-01", "2021-01-01"]}), json!({})),
            json!(false)
        );
    }

    #[test]
    fn uvci_fragments_and_partial_birth_dates() {
        let uvci = "URN:UVCI:01:NL:187/37512422923";
        assert_eq!(
            run(json!({"extractFromUVCI": [uvci, 1]}), json!({})),
            json!("NL")
        );
        assert_eq!(
            run(json!({"extractFromUVCI": [uvci, 3]}), json!({})),
            json!("37512422923")
        );
        assert_eq!(
            run(json!({"extractFromUVCI": [uvci, 9]}), json!({})),
            json!(null)
        );
        assert_eq!(
            run(json!({"extractFromUVCI": [null, 0]}), json!({})),
            json!(null)
        );
        assert_eq!(
            run(json!({"dccDateOfBirth": ["2004-02"]}), json!({})),
            json!("2004-02-29T00:00:00.000000Z")
        );
        assert_eq!(
            run(json!({"dccDateOfBirth": ["2004"]}), json!({})),
            json!("2004-12-31T00:00:00.000000Z")
        );
        assert_eq!(
            run(json!({"dccDateOfBirth": ["2004-02-03"]}), json!({})),
            json!("2004-02-03T00:00:00.000000Z")
        );
    }

    #[test]
    fn a_rule_that_fails_to_evaluate_is_not_satisfied() {
        let rule = Rule {
            identifier: "TR-X-0001".into(),
            certificate_type: "Test".into(),
            description: vec![],
            logic: json!({"before": [{"var": "payload.t.0.sc"}, {"var": "external.validationClock"}]}),
        };
        let logic = rule.compile().expect("compiles");
        assert!(!satisfied(
            &logic,
            &json!({"payload": {}, "external": {"validationClock": "2021-01-01T00:00:00Z"}})
        ));
        assert!(satisfied(
            &logic,
            &json!({"payload": {"t": [{"sc": "2020-12-31T10:00:00Z"}]}, "external": {"validationClock": "2021-01-01T00:00:00Z"}})
        ));
        assert!(
            Rule {
                certificate_type: "Any".into(),
                ..rule.clone()
            }
            .compile()
            .is_err()
        );
        // JsonLogic's operations outside CertLogic, and unknown ones, are refused when the rule is stored.
        for logic in [
            json!({"==": [1, 1]}),
            json!({"if": [true, {"noSuch": 1}, 1]}),
            json!({"a": 1, "b": 2}),
        ] {
            assert!(
                Rule {
                    logic,
                    ..rule.clone()
                }
                .compile()
                .is_err()
            );
        }
    }
}
