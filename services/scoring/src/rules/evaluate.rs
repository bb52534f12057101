//! Running a compiled rule set over one person's facts: the colour, every reason with its rule, what to do, and
//! until when. Pure: the same facts and the same rule set always give the same outcome.

use chrono::NaiveDate;
use datalogic_rs::bumpalo::Bump;
use datalogic_rs::{DataValue, EvalInput, Logic};
use hc_domain::Colour;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::compile::{CompiledModel, CompiledRuleSet, ENGINE};
use super::document::{Text, Variant};
use crate::facts::lookup;

/// Why a person has their colour: the rule, and its text with the facts filled in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Reason {
    pub rule: String,
    #[schema(value_type = String, example = "green")]
    pub colour: Colour,
    pub zh: String,
    pub en: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Requirement {
    pub rule: String,
    pub zh: String,
    pub en: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub colour: Colour,
    pub variant: Variant,
    /// Most severe first.
    pub reasons: Vec<Reason>,
    pub requirements: Vec<Requirement>,
    /// The first day on which the colour lapses if nothing new happens (None: green, or only a new fact lifts it).
    pub valid_until: Option<NaiveDate>,
}

/// Evaluates many people with one arena, reset between people. A person's facts are converted into the arena
/// once and every rule reads them there.
#[derive(Default)]
pub struct Evaluator {
    arena: Bump,
    /// Rule evaluations done (for the benchmark's rate).
    pub evaluations: u64,
}

/// Fills `{fact.path}` placeholders (and `{score}`).
pub fn render(template: &str, facts: &Value, score: Option<f64>) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            out.push_str(&rest[open..]);
            return out;
        };
        let name = &after[..close];
        match (name, score) {
            ("score", Some(s)) => out.push_str(&format!("{s}")),
            _ => match lookup(facts, name) {
                Value::String(s) => out.push_str(s),
                Value::Null => out.push('-'),
                other => out.push_str(&other.to_string()),
            },
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

fn text_reason(rule: &str, colour: Colour, t: &Text, facts: &Value, score: Option<f64>) -> Reason {
    Reason {
        rule: rule.to_owned(),
        colour,
        zh: render(&t.zh, facts, score),
        en: render(&t.en, facts, score),
    }
}

fn truthy<'a>(logic: &'a Logic, data: &'a DataValue<'a>, arena: &'a Bump, count: &mut u64) -> bool {
    *count += 1;
    ENGINE
        .evaluate(logic, data, arena)
        .is_ok_and(|v| ENGINE.truthy(v))
}

/// Truthiness of an expression that reads no facts (checked once, when a rule set is compiled).
pub(super) fn truthy_on_nothing(logic: &Logic) -> bool {
    let arena = Bump::new();
    let nothing = arena.alloc(DataValue::Null);
    truthy(logic, nothing, &arena, &mut 0)
}

fn number<'a>(
    logic: &'a Logic,
    data: &'a DataValue<'a>,
    arena: &'a Bump,
    count: &mut u64,
) -> Option<f64> {
    *count += 1;
    ENGINE
        .evaluate(logic, data, arena)
        .ok()
        .and_then(|v| v.as_f64())
}

impl Evaluator {
    pub fn evaluate(&mut self, set: &CompiledRuleSet, facts: &Value) -> Outcome {
        self.arena.reset();
        let arena = &self.arena;
        let mut count = 0u64;
        let data: &DataValue<'_> = match facts.into_arena_value(arena) {
            Ok(d) => d,
            Err(_) => arena.alloc(DataValue::Null),
        };
        let today: Option<NaiveDate> = facts["today"].as_str().and_then(|d| d.parse().ok());
        let inbound = facts["inbound"]["active"].as_bool().unwrap_or(false);
        let variant = if inbound {
            Variant::International
        } else {
            Variant::Standard
        };
        let mut reasons = Vec::new();
        let mut requirements = Vec::new();
        // (colour, days until it lapses) of every reason.
        let mut lapses: Vec<(Colour, Option<i64>)> = Vec::new();
        match &set.model {
            CompiledModel::Rules(rules) => {
                for rule in rules {
                    if rule.variant == Variant::International && !inbound {
                        continue;
                    }
                    if !truthy(&rule.when, data, arena, &mut count) {
                        continue;
                    }
                    let days = rule
                        .expires_in_days
                        .as_ref()
                        .and_then(|e| number(e, data, arena, &mut count))
                        .map(|d| d.ceil().max(1.0) as i64);
                    lapses.push((rule.colour, days));
                    reasons.push(text_reason(
                        &rule.id,
                        rule.colour,
                        &rule.reason,
                        facts,
                        None,
                    ));
                    if let Some(r) = &rule.requirement {
                        requirements.push(Requirement {
                            rule: rule.id.clone(),
                            zh: render(&r.zh, facts, None),
                            en: render(&r.en, facts, None),
                        });
                    }
                }
            }
            CompiledModel::Scored(scored) => {
                let mut total = 0.0;
                let mut parts = Vec::new();
                for d in &scored.dimensions {
                    let s = number(&d.score, data, arena, &mut count)
                        .unwrap_or(0.0)
                        .clamp(0.0, d.max);
                    total += s;
                    if s > 0.0 {
                        parts.push((d, s));
                    }
                }
                let colour = scored
                    .thresholds
                    .iter()
                    .rev()
                    .find(|(_, at)| total >= *at)
                    .map(|(c, _)| *c);
                if let Some(colour) = colour {
                    let days = scored
                        .expires_in_days
                        .as_ref()
                        .and_then(|e| number(e, data, arena, &mut count))
                        .map(|d| d.ceil().max(1.0) as i64);
                    lapses.push((colour, days));
                    for (d, s) in parts {
                        reasons.push(text_reason(&d.id, colour, &d.reason, facts, Some(s)));
                    }
                    if let Some(r) = &scored.requirement {
                        requirements.push(Requirement {
                            rule: "score".into(),
                            zh: render(&r.zh, facts, Some(total)),
                            en: render(&r.en, facts, Some(total)),
                        });
                    }
                }
            }
        }
        let colour = lapses
            .iter()
            .map(|(c, _)| *c)
            .max()
            .unwrap_or(Colour::Green);
        // The colour lapses when the last of its reasons does; one reason without an expiry holds it.
        let valid_until = if colour == Colour::Green {
            None
        } else {
            lapses
                .iter()
                .filter(|(c, _)| *c == colour)
                .map(|(_, d)| *d)
                .try_fold(0, |acc, d| d.map(|d| acc.max(d)))
                .and_then(|d| today.and_then(|t| t.checked_add_days(chrono::Days::new(d as u64))))
        };
        // Stable order: most severe first, then rule order.
        reasons.sort_by_key(|r| std::cmp::Reverse(r.colour));
        self.evaluations += count;
        Outcome {
            colour,
            variant,
            reasons,
            requirements,
            valid_until,
        }
    }
}
