//! Checking a rule set and compiling it once: every JsonLogic expression becomes a `datalogic_rs::Logic` when the
//! set is loaded, never re-parsed per person. Errors carry the JSON pointer of what is wrong.

use std::collections::HashSet;
use std::sync::{Arc, LazyLock};

use datalogic_rs::{Engine, Logic};
use hc_domain::Colour;
use serde_json::Value;

use super::document::{Model, RuleSetDoc, Text, Variant};
use crate::facts::KNOWN_FACTS;

/// One engine for the process: compiled logic is tied to no engine state we change.
pub static ENGINE: LazyLock<Engine> = LazyLock::new(Engine::new);

/// What is wrong with a rule set, and where (a JSON pointer into the document).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{pointer}: {message}")]
pub struct RuleError {
    pub pointer: String,
    pub message: String,
}

fn error(pointer: impl Into<String>, message: impl Into<String>) -> RuleError {
    RuleError {
        pointer: pointer.into(),
        message: message.into(),
    }
}

pub struct CompiledRule {
    pub id: String,
    pub colour: Colour,
    pub variant: Variant,
    pub when: Arc<Logic>,
    pub expires_in_days: Option<Arc<Logic>>,
    pub reason: Text,
    pub requirement: Option<Text>,
}

pub struct CompiledDimension {
    pub id: String,
    pub score: Arc<Logic>,
    pub max: f64,
    pub reason: Text,
}

pub struct CompiledScored {
    pub dimensions: Vec<CompiledDimension>,
    /// Ascending by `at`.
    pub thresholds: Vec<(Colour, f64)>,
    pub expires_in_days: Option<Arc<Logic>>,
    pub requirement: Option<Text>,
}

pub enum CompiledModel {
    Rules(Vec<CompiledRule>),
    Scored(CompiledScored),
}

/// A rule set ready to evaluate. `label` names the versions it was merged from (`000000@1+610000@2`), and is
/// stored with every status it produced.
pub struct CompiledRuleSet {
    pub label: String,
    pub model: CompiledModel,
}

/// Every `var` (and `missing`/`missing_some`) path in `logic`, with its pointer.
fn references(logic: &Value, pointer: &str, out: &mut Vec<(String, String)>) {
    match logic {
        Value::Object(map) => {
            for (op, arg) in map {
                let here = format!("{pointer}/{}", escape(op));
                match op.as_str() {
                    "var" => match arg {
                        Value::String(path) => out.push((path.clone(), here)),
                        Value::Array(items) => match items.first() {
                            Some(Value::String(path)) => {
                                out.push((path.clone(), format!("{here}/0")))
                            }
                            _ => out.push((String::new(), here)),
                        },
                        _ => out.push((String::new(), here)),
                    },
                    "missing" | "missing_some" => {
                        let names = match (op.as_str(), arg) {
                            ("missing_some", Value::Array(a)) => {
                                a.get(1).cloned().unwrap_or_default()
                            }
                            _ => arg.clone(),
                        };
                        if let Value::Array(names) = names {
                            for (i, n) in names.iter().enumerate() {
                                if let Value::String(path) = n {
                                    out.push((path.clone(), format!("{here}/{i}")));
                                }
                            }
                        }
                    }
                    _ => references(arg, &here, out),
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                references(item, &format!("{pointer}/{i}"), out);
            }
        }
        _ => {}
    }
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Compiles one expression after checking that it reads only known facts.
fn expression(logic: &Value, pointer: &str) -> Result<(Arc<Logic>, bool), RuleError> {
    let mut refs = Vec::new();
    references(logic, pointer, &mut refs);
    for (path, at) in &refs {
        if !KNOWN_FACTS.contains(path) {
            return Err(error(
                at.clone(),
                format!("unknown fact {path:?}; known facts are listed in docs/scoring-rules.md"),
            ));
        }
    }
    let compiled = ENGINE
        .compile(logic)
        .map_err(|e| error(pointer, format!("not valid JsonLogic: {e}")))?;
    Ok((Arc::new(compiled), refs.is_empty()))
}

fn text(t: &Text, pointer: &str) -> Result<(), RuleError> {
    for (lang, s) in [("zh", &t.zh), ("en", &t.en)] {
        if s.trim().is_empty() {
            return Err(error(format!("{pointer}/{lang}"), "must not be empty"));
        }
        let mut rest = s.as_str();
        while let Some(open) = rest.find('{') {
            let after = &rest[open + 1..];
            let Some(close) = after.find('}') else {
                return Err(error(format!("{pointer}/{lang}"), "has an unclosed {"));
            };
            let name = &after[..close];
            if !KNOWN_FACTS.contains(name) && name != "score" {
                return Err(error(
                    format!("{pointer}/{lang}"),
                    format!("placeholder {{{name}}} is not a known fact"),
                ));
            }
            rest = &after[close + 1..];
        }
    }
    Ok(())
}

/// Checks and compiles a (merged) rule set.
pub fn compile(doc: &RuleSetDoc, label: String) -> Result<CompiledRuleSet, RuleError> {
    let model = match doc.model {
        Model::Rules => {
            if doc.scored.is_some() {
                return Err(error("/scored", "only a scored model has a scored section"));
            }
            let mut seen = HashSet::new();
            let mut rules = Vec::with_capacity(doc.rules.len());
            for (i, rule) in doc.rules.iter().enumerate() {
                let at = format!("/rules/{i}");
                if rule.id.trim().is_empty() || rule.id.len() > 64 {
                    return Err(error(format!("{at}/id"), "must be 1 to 64 characters"));
                }
                if !seen.insert(rule.id.as_str()) {
                    return Err(error(
                        format!("{at}/id"),
                        format!("{} appears twice", rule.id),
                    ));
                }
                if !rule.variant.palette().contains(&rule.colour) {
                    return Err(error(
                        format!("{at}/colour"),
                        format!(
                            "{} can never be reached by a {} rule (its colours are {})",
                            rule.colour,
                            rule.variant.as_str(),
                            rule.variant
                                .palette()
                                .iter()
                                .map(|c| c.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ));
                }
                let (when, constant) = expression(&rule.when, &format!("{at}/when"))?;
                if constant && !super::evaluate::truthy_on_nothing(&when) {
                    return Err(error(
                        format!("{at}/when"),
                        format!("never fires, so {} can never be reached", rule.colour),
                    ));
                }
                let expires = rule
                    .expires_in_days
                    .as_ref()
                    .map(|e| expression(e, &format!("{at}/expires_in_days")).map(|c| c.0))
                    .transpose()?;
                text(&rule.reason, &format!("{at}/reason"))?;
                if let Some(r) = &rule.requirement {
                    text(r, &format!("{at}/requirement"))?;
                }
                rules.push(CompiledRule {
                    id: rule.id.clone(),
                    colour: rule.colour,
                    variant: rule.variant,
                    when,
                    expires_in_days: expires,
                    reason: rule.reason.clone(),
                    requirement: rule.requirement.clone(),
                });
            }
            CompiledModel::Rules(rules)
        }
        Model::Scored => {
            let Some(scored) = &doc.scored else {
                return Err(error(
                    "/scored",
                    "a scored model needs its dimensions and thresholds",
                ));
            };
            if !doc.rules.is_empty() {
                return Err(error("/rules", "a scored model has dimensions, not rules"));
            }
            if scored.dimensions.is_empty() {
                return Err(error("/scored/dimensions", "needs at least one dimension"));
            }
            let mut dimensions = Vec::new();
            for (i, d) in scored.dimensions.iter().enumerate() {
                let at = format!("/scored/dimensions/{i}");
                if !(d.max.is_finite() && d.max > 0.0) {
                    return Err(error(format!("{at}/max"), "must be a positive number"));
                }
                let (score, _) = expression(&d.score, &format!("{at}/score"))?;
                text(&d.reason, &format!("{at}/reason"))?;
                dimensions.push(CompiledDimension {
                    id: d.id.clone(),
                    score,
                    max: d.max,
                    reason: d.reason.clone(),
                });
            }
            let ceiling: f64 = dimensions.iter().map(|d| d.max).sum();
            let mut thresholds: Vec<(Colour, f64)> = Vec::new();
            for (i, t) in scored.thresholds.iter().enumerate() {
                let at = format!("/scored/thresholds/{i}");
                if !Variant::Standard.palette().contains(&t.colour) {
                    return Err(error(format!("{at}/colour"), "must be yellow or red"));
                }
                if !(t.at.is_finite() && t.at > 0.0) {
                    return Err(error(format!("{at}/at"), "must be a positive number"));
                }
                if t.at > ceiling {
                    return Err(error(
                        format!("{at}/at"),
                        format!(
                            "{} can never be reached: the dimensions add up to at most {ceiling}",
                            t.colour
                        ),
                    ));
                }
                if let Some((c, a)) = thresholds.last()
                    && (t.colour <= *c || t.at <= *a)
                {
                    return Err(error(
                        at,
                        "thresholds must rise in both colour and score (yellow before red)",
                    ));
                }
                thresholds.push((t.colour, t.at));
            }
            if thresholds.is_empty() {
                return Err(error("/scored/thresholds", "needs at least one threshold"));
            }
            let expires = scored
                .expires_in_days
                .as_ref()
                .map(|e| expression(e, "/scored/expires_in_days").map(|c| c.0))
                .transpose()?;
            if let Some(r) = &scored.requirement {
                text(r, "/scored/requirement")?;
            }
            CompiledModel::Scored(CompiledScored {
                dimensions,
                thresholds,
                expires_in_days: expires,
                requirement: scored.requirement.clone(),
            })
        }
    };
    Ok(CompiledRuleSet { label, model })
}
