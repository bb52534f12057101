//! Every shipped rule against a fact set that triggers it and one that just misses it, inheritance between
//! regions, and the determinism property.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use hc_domain::Colour;
use proptest::prelude::*;

use super::*;
use crate::facts::{Declared, Listed, RawFacts, RiskLevel, RiskMap, Tested, Visited, document};

/// Noon in Beijing on 2022-01-20.
fn now() -> DateTime<Utc> {
    "2022-01-20T04:00:00Z".parse().expect("time")
}

fn today() -> NaiveDate {
    hc_domain::china_time::day_of(now())
}

fn days_ago(n: i64) -> NaiveDate {
    today() - Duration::days(n)
}

fn book(extra: &[(&str, &str)]) -> RuleBook {
    RuleBook::new(
        SHIPPED
            .iter()
            .chain(extra.iter())
            .map(|(r, text)| {
                (
                    r.to_string(),
                    Active {
                        version: 1,
                        doc: serde_json::from_str(text).expect("parses"),
                    },
                )
            })
            .collect(),
    )
}

fn risk() -> RiskMap {
    RiskMap::new([("610113", RiskLevel::High), ("440111", RiskLevel::Medium)])
}

fn outcome_in(home: &str, raw: &RawFacts, book: &RuleBook) -> Outcome {
    let set = book.for_home(home).expect("set");
    Evaluator::default().evaluate(&set, &document(raw, home, now(), &risk()))
}

fn outcome(raw: &RawFacts) -> Outcome {
    outcome_in("440106", raw, &book(&[]))
}

fn listed(status: &str, since: i64) -> RawFacts {
    RawFacts {
        cases: vec![Listed {
            status: status.into(),
            since: days_ago(since),
            until: None,
            region: None,
        }],
        ..RawFacts::default()
    }
}

fn visit(region: &str, ago: i64) -> RawFacts {
    let at = hc_domain::china_time::start_of(days_ago(ago)) + Duration::hours(10);
    RawFacts {
        visits: vec![Visited {
            region: region.into(),
            first_seen: at - Duration::hours(30),
            last_seen: at,
        }],
        ..RawFacts::default()
    }
}

fn declared(ago: i64, fever: bool, symptoms: bool, contact: Option<i64>) -> Declared {
    Declared {
        day: days_ago(ago),
        fever,
        symptoms,
        contact_date: contact.map(days_ago),
    }
}

/// Clean declarations for each of the last `n` days (today included).
fn streak(n: i64) -> Vec<Declared> {
    (0..n).map(|d| declared(d, false, false, None)).collect()
}

fn rules_of(o: &Outcome) -> Vec<&str> {
    o.reasons.iter().map(|r| r.rule.as_str()).collect()
}

#[test]
fn nothing_known_is_green() {
    let o = outcome(&RawFacts::default());
    assert_eq!(o.colour, Colour::Green);
    assert!(o.reasons.is_empty() && o.valid_until.is_none());
}

#[test]
fn confirmed_and_asymptomatic_cases_are_red_while_listed() {
    for (status, rule) in [
        ("confirmed", "confirmed-case"),
        ("asymptomatic", "asymptomatic-case"),
    ] {
        let o = outcome(&listed(status, 30));
        assert_eq!((o.colour, rules_of(&o)), (Colour::Red, vec![rule]));
        assert_eq!(
            o.valid_until, None,
            "only lifting the listing turns it green"
        );
        let mut lifted = listed(status, 30);
        lifted.cases[0].until = Some(days_ago(1));
        assert_eq!(
            outcome(&lifted).colour,
            Colour::Green,
            "{status} lifted yesterday"
        );
    }
}

#[test]
fn a_positive_test_is_red_for_14_days() {
    let positive = |ago: i64| RawFacts {
        tests: vec![Tested {
            sample_time: hc_domain::china_time::start_of(days_ago(ago)) + Duration::hours(9),
            positive: true,
        }],
        ..RawFacts::default()
    };
    let o = outcome(&positive(14));
    assert_eq!(
        (o.colour, rules_of(&o)),
        (Colour::Red, vec!["positive-nat"])
    );
    assert_eq!(o.valid_until, Some(today() + Duration::days(1)));
    assert_eq!(outcome(&positive(15)).colour, Colour::Green);
}

#[test]
fn a_visit_to_a_high_risk_region_is_red_for_14_days_with_the_region_and_day_in_the_reason() {
    let o = outcome(&visit("610113", 14));
    assert_eq!((o.colour, rules_of(&o)), (Colour::Red, vec!["visit-high"]));
    assert_eq!(
        o.reasons[0].en,
        format!("visited 610113 (high risk) on {}", days_ago(14))
    );
    assert!(o.reasons[0].zh.contains("610113"));
    assert_eq!(outcome(&visit("610113", 15)).colour, Colour::Green);
    // A county inside a city that is high counts too; a low one never does.
    assert_eq!(outcome(&visit("440106", 0)).colour, Colour::Green);
}

#[test]
fn a_visit_to_a_medium_risk_region_is_yellow_for_14_days() {
    let o = outcome(&visit("440111", 14));
    assert_eq!(
        (o.colour, rules_of(&o)),
        (Colour::Yellow, vec!["visit-medium"])
    );
    assert_eq!(outcome(&visit("440111", 15)).colour, Colour::Green);
}

#[test]
fn a_close_contact_is_yellow_for_7_days_nationally_and_red_for_14_in_shaanxi() {
    let book = book(&[]);
    assert_eq!(
        outcome_in("440106", &listed("close_contact", 7), &book).colour,
        Colour::Yellow
    );
    assert_eq!(
        outcome_in("440106", &listed("close_contact", 8), &book).colour,
        Colour::Green
    );
    // Xi'an inherits Shaanxi's rule.
    let o = outcome_in("610113", &listed("close_contact", 14), &book);
    assert_eq!(
        (o.colour, rules_of(&o)),
        (Colour::Red, vec!["close-contact"])
    );
    assert_eq!(
        outcome_in("610113", &listed("close_contact", 15), &book).colour,
        Colour::Green
    );
}

#[test]
fn a_secondary_contact_is_yellow_for_7_days() {
    assert_eq!(
        outcome(&listed("secondary_contact", 7)).colour,
        Colour::Yellow
    );
    assert_eq!(
        outcome(&listed("secondary_contact", 8)).colour,
        Colour::Green
    );
}

#[test]
fn fever_or_symptoms_declared_are_yellow_for_7_days() {
    for (fever, symptoms) in [(true, false), (false, true)] {
        let raw = |ago| RawFacts {
            declarations: vec![declared(ago, fever, symptoms, None)],
            ..RawFacts::default()
        };
        let o = outcome(&raw(6));
        assert_eq!(
            (o.colour, rules_of(&o)),
            (Colour::Yellow, vec!["fever-or-symptoms"])
        );
        assert_eq!(outcome(&raw(7)).colour, Colour::Green);
    }
}

#[test]
fn a_declared_contact_is_yellow_for_7_days() {
    let raw = |ago| RawFacts {
        declarations: vec![declared(0, false, false, Some(ago))],
        ..RawFacts::default()
    };
    assert_eq!(outcome(&raw(6)).colour, Colour::Yellow);
    assert_eq!(outcome(&raw(7)).colour, Colour::Green);
}

#[test]
fn inbound_travellers_get_the_variant_colours() {
    let o = outcome(&listed("inbound", 13));
    assert_eq!(
        (o.colour, o.variant),
        (Colour::Orange, document::Variant::International)
    );
    assert_eq!(rules_of(&o), vec!["inbound-quarantine"]);
    let o = outcome(&listed("inbound", 14));
    assert_eq!(
        (o.colour, rules_of(&o)),
        (Colour::Yellow, vec!["inbound-monitoring"])
    );
    assert_eq!(outcome(&listed("inbound", 21)).colour, Colour::Green);
    // The variant applies only to inbound travellers.
    assert_eq!(
        outcome(&listed("close_contact", 30)).variant,
        document::Variant::Standard
    );
}

#[test]
fn the_most_severe_reason_wins_and_all_are_listed() {
    let mut raw = visit("610113", 3);
    raw.declarations.push(declared(0, true, false, None));
    let o = outcome(&raw);
    assert_eq!(o.colour, Colour::Red);
    assert_eq!(rules_of(&o), vec!["visit-high", "fever-or-symptoms"]);
    assert_eq!(o.valid_until, Some(today() + Duration::days(12)));
}

#[test]
fn in_hangzhou_red_turns_green_only_after_14_consecutive_clean_declarations() {
    let book = book(&[]);
    let mut raw = listed("close_contact", 20);
    raw.declarations = streak(13);
    let o = outcome_in("330102", &raw, &book);
    assert_eq!(
        (o.colour, rules_of(&o)),
        (Colour::Red, vec!["close-contact"])
    );
    assert!(
        o.requirements[0].en.contains("13 so far"),
        "{:?}",
        o.requirements
    );
    assert_eq!(o.valid_until, Some(today() + Duration::days(1)));
    raw.declarations = streak(14);
    assert_eq!(outcome_in("330102", &raw, &book).colour, Colour::Green);
    // Outside Hangzhou the same facts are long green (a close contact is yellow for 7 days).
    raw.declarations.clear();
    assert_eq!(outcome_in("440106", &raw, &book).colour, Colour::Green);
    assert_eq!(outcome_in("330102", &raw, &book).colour, Colour::Red);
}

#[test]
fn in_hangzhou_yellow_needs_7_clean_days_and_a_missed_day_restarts_the_count() {
    let book = book(&[]);
    let mut raw = visit("440111", 10);
    raw.declarations = streak(6);
    assert_eq!(outcome_in("330102", &raw, &book).colour, Colour::Yellow);
    raw.declarations = streak(7);
    assert_eq!(outcome_in("330102", &raw, &book).colour, Colour::Green);
    // A gap three days ago: only the last two days count.
    raw.declarations = streak(8)
        .into_iter()
        .filter(|d| d.day != days_ago(2))
        .collect();
    assert_eq!(outcome_in("330102", &raw, &book).colour, Colour::Yellow);
}

#[test]
fn hangzhous_scored_model_adds_space_time_and_relation() {
    let book = book(&[("330100", HANGZHOU_SCORED)]);
    let o = outcome_in("330102", &visit("610113", 2), &book);
    assert_eq!(
        o.colour,
        Colour::Red,
        "space 60 + time 20 + 10 for a long stay"
    );
    assert_eq!(rules_of(&o), vec!["space", "time"]);
    assert!(
        o.reasons[0].en.starts_with("space 60"),
        "{}",
        o.reasons[0].en
    );
    let o = outcome_in("330102", &visit("440111", 10), &book);
    assert_eq!(o.colour, Colour::Yellow, "space 30");
    assert_eq!(
        outcome_in("330102", &listed("secondary_contact", 3), &book).colour,
        Colour::Yellow
    );
    assert_eq!(
        outcome_in("330102", &RawFacts::default(), &book).colour,
        Colour::Green
    );
}

fn rejected(doc: serde_json::Value) -> RuleError {
    let doc: RuleSetDoc = serde_json::from_value(doc).expect("shape");
    match compile(&doc, "draft".into()) {
        Ok(_) => panic!("accepted"),
        Err(e) => e,
    }
}

#[test]
fn rule_sets_with_errors_are_rejected_with_the_position() {
    let text = serde_json::json!({"zh": "x", "en": "x"});
    let e = rejected(serde_json::json!({"rules": [
        {"id": "a", "colour": "red", "when": {"<": [{"var": "nat.positive.days_ago"}, 3]}, "reason": text},
        {"id": "b", "colour": "red", "when": {"and": [true, {"<": [{"var": "visits.high.days_ago"}, 3]}]}, "reason": text}
    ]}));
    assert_eq!(e.pointer, "/rules/1/when/and/1/</0/var");
    assert!(e.message.contains("visits.high.days_ago"));

    let e = rejected(serde_json::json!({"rules": [
        {"id": "a", "colour": "red", "when": {"no_such_operator": [1, 2]}, "reason": text}
    ]}));
    assert_eq!(e.pointer, "/rules/0/when");

    let e = rejected(serde_json::json!({"rules": [
        {"id": "a", "colour": "orange", "when": true, "reason": text}
    ]}));
    assert_eq!(e.pointer, "/rules/0/colour");
    assert!(e.message.contains("never be reached"));

    let e = rejected(serde_json::json!({"rules": [
        {"id": "a", "colour": "red", "when": {"==": [1, 2]}, "reason": text}
    ]}));
    assert_eq!(e.pointer, "/rules/0/when");

    let e = rejected(serde_json::json!({"rules": [
        {"id": "a", "colour": "red", "when": true, "reason": {"zh": "{nope}", "en": "x"}}
    ]}));
    assert_eq!(e.pointer, "/rules/0/reason/zh");

    let e = rejected(serde_json::json!({"model": "scored", "scored": {
        "dimensions": [{"id": "s", "score": 10, "max": 10, "reason": text}],
        "thresholds": [{"colour": "yellow", "at": 5}, {"colour": "red", "at": 20}]
    }}));
    assert_eq!(e.pointer, "/scored/thresholds/1/at");
    assert!(e.message.contains("red can never be reached"));
}

#[test]
fn disabling_an_unknown_inherited_rule_is_an_error() {
    let parent: RuleSetDoc = serde_json::from_str(SHIPPED[0].1).expect("national");
    let child: RuleSetDoc =
        serde_json::from_value(serde_json::json!({"disable": ["visit-medium", "nope"]}))
            .expect("shape");
    let e = merge(&parent, &child).expect_err("unknown id");
    assert_eq!(e.pointer, "/disable/1");
    let child: RuleSetDoc =
        serde_json::from_value(serde_json::json!({"disable": ["visit-medium"]})).expect("shape");
    let merged = merge(&parent, &child).expect("merge");
    assert_eq!(merged.rules.len(), parent.rules.len() - 1);
}

fn arb_facts() -> impl Strategy<Value = RawFacts> {
    let day = 0i64..40;
    let regions = prop::sample::select(vec!["610113", "440111", "440106", "330102"]);
    let statuses = prop::sample::select(
        hc_domain::CaseStatus::ALL
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>(),
    );
    (
        prop::collection::vec(
            (
                day.clone(),
                any::<bool>(),
                any::<bool>(),
                prop::option::of(0i64..20),
            ),
            0..12,
        ),
        prop::collection::vec((statuses, day.clone(), prop::option::of(0i64..10)), 0..4),
        prop::collection::vec((0i64..40 * 24, any::<bool>()), 0..4),
        prop::collection::vec((regions, 0i64..40 * 24, 0i64..48), 0..5),
    )
        .prop_map(|(decls, cases, tests, visits)| RawFacts {
            declarations: decls
                .into_iter()
                .map(|(d, f, s, c)| declared(d, f, s, c.map(|c| c + d)))
                .collect(),
            cases: cases
                .into_iter()
                .map(|(s, since, until)| Listed {
                    status: s.to_owned(),
                    since: days_ago(since),
                    until: until.map(|u| days_ago(since) + Duration::days(u)),
                    region: None,
                })
                .collect(),
            tests: tests
                .into_iter()
                .map(|(h, positive)| Tested {
                    sample_time: now() - Duration::hours(h),
                    positive,
                })
                .collect(),
            visits: visits
                .into_iter()
                .map(|(r, h, stay)| Visited {
                    region: r.to_owned(),
                    first_seen: now() - Duration::hours(h + stay),
                    last_seen: now() - Duration::hours(h),
                })
                .collect(),
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Same facts (in whatever order the projection returns them) and the same rule version: the same colour,
    /// reasons, requirements and valid-until, in every region's rule set.
    #[test]
    fn same_facts_and_rules_always_give_the_same_status(raw in arb_facts(), seed in any::<u64>(), home in prop::sample::select(vec!["440106", "610113", "330102"])) {
        let book = book(&[]);
        let first = outcome_in(home, &raw, &book);
        let mut shuffled = raw.clone();
        let rot = |n: usize| if n == 0 { 0 } else { (seed as usize) % n };
        let r = rot(shuffled.declarations.len()); shuffled.declarations.rotate_left(r);
        shuffled.declarations.reverse();
        let r = rot(shuffled.cases.len()); shuffled.cases.rotate_left(r);
        let r = rot(shuffled.tests.len()); shuffled.tests.rotate_left(r);
        shuffled.tests.reverse();
        let r = rot(shuffled.visits.len()); shuffled.visits.rotate_left(r);
        shuffled.visits.reverse();
        let again = outcome_in(home, &shuffled, &book);
        prop_assert_eq!(&first, &again);
        // A fresh evaluator and a freshly compiled set agree too.
        let fresh = outcome_in(home, &raw, &self::book(&[]));
        prop_assert_eq!(first, fresh);
    }
}
