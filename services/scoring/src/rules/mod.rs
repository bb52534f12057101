//! Rules as data: documents per region (`document`), checked and compiled once (`compile`), run per person
//! (`evaluate`), and the book of rule sets in force with their inheritance (`RuleBook`).

pub mod compile;
pub mod document;
pub mod evaluate;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub use compile::{CompiledRuleSet, RuleError, compile};
pub use document::{Model, RuleSetDoc};
pub use evaluate::{Evaluator, Outcome, Reason, Requirement};

/// The region of the national baseline.
pub const NATIONAL: &str = "000000";

/// The rule sets shipped with the service, stored as version 1 of their region when it has none.
pub const SHIPPED: &[(&str, &str)] = &[
    (NATIONAL, include_str!("../../rules/000000.json")),
    ("610000", include_str!("../../rules/610000.json")),
    ("330100", include_str!("../../rules/330100.json")),
];

/// Hangzhou's scored model, shipped as an alternative (not installed).
pub const HANGZHOU_SCORED: &str = include_str!("../../rules/hangzhou-scored.json");

/// A rule-set region: `000000` (national) or a GB/T 2260 code.
pub fn parse_region(raw: &str) -> Result<String, String> {
    if raw == NATIONAL {
        return Ok(raw.to_owned());
    }
    hc_domain::RegionCode::parse(raw)
        .map(|r| r.to_string())
        .map_err(|e| e.reason)
}

/// The regions whose rule sets govern a person living in `home`, outermost first: national, province, city,
/// county.
pub fn chain(home: &str) -> Vec<String> {
    let mut out = vec![NATIONAL.to_owned()];
    if home.len() == 6 && home != NATIONAL {
        for candidate in [
            format!("{}0000", &home[..2]),
            format!("{}00", &home[..4]),
            home.to_owned(),
        ] {
            if !out.contains(&candidate) {
                out.push(candidate);
            }
        }
    }
    out
}

/// Applies `child` over `parent`: same-id rules replaced, new ones appended, `disable`d ones removed. A child that
/// does not inherit, or changes the model, replaces the parent. Errors point into the child.
pub fn merge(parent: &RuleSetDoc, child: &RuleSetDoc) -> Result<RuleSetDoc, RuleError> {
    if !child.inherit || child.model != parent.model || child.model == Model::Scored {
        return Ok(child.clone());
    }
    let mut merged = parent.clone();
    merged.description = child.description.clone().or(merged.description);
    for (i, id) in child.disable.iter().enumerate() {
        let before = merged.rules.len();
        merged.rules.retain(|r| &r.id != id);
        if merged.rules.len() == before {
            return Err(RuleError {
                pointer: format!("/disable/{i}"),
                message: format!("no inherited rule has the id {id}"),
            });
        }
    }
    for rule in &child.rules {
        match merged.rules.iter_mut().find(|r| r.id == rule.id) {
            Some(existing) => *existing = rule.clone(),
            None => merged.rules.push(rule.clone()),
        }
    }
    merged.disable.clear();
    Ok(merged)
}

/// A version of a region's set in force.
#[derive(Debug, Clone)]
pub struct Active {
    pub version: i32,
    pub doc: RuleSetDoc,
}

/// The rule sets in force, and their merged, compiled form per chain (compiled once, on first use).
#[derive(Default)]
pub struct RuleBook {
    pub sets: HashMap<String, Active>,
    compiled: Mutex<HashMap<String, Arc<CompiledRuleSet>>>,
}

impl RuleBook {
    pub fn new(sets: HashMap<String, Active>) -> Self {
        Self {
            sets,
            compiled: Mutex::default(),
        }
    }

    /// This book with `draft` in place of `region`'s set (as version 0), to check or try the draft.
    pub fn with_draft(&self, region: &str, draft: &RuleSetDoc) -> RuleBook {
        let mut sets = self.sets.clone();
        let draft = Active {
            version: 0,
            doc: draft.clone(),
        };
        sets.insert(region.to_owned(), draft);
        RuleBook::new(sets)
    }

    /// The merged document and its label for the chain of `home`.
    pub fn merged(&self, home: &str) -> Result<(RuleSetDoc, String), RuleError> {
        let mut merged: Option<RuleSetDoc> = None;
        let mut label = Vec::new();
        for region in chain(home) {
            let Some(a) = self.sets.get(&region) else {
                continue;
            };
            label.push(format!("{region}@{}", a.version));
            merged = Some(match merged {
                None => a.doc.clone(),
                Some(parent) => merge(&parent, &a.doc)?,
            });
        }
        let doc = merged.ok_or_else(|| RuleError {
            pointer: String::new(),
            message: "no rule set applies (the national baseline is missing)".into(),
        })?;
        Ok((doc, label.join("+")))
    }

    /// The compiled set for a person living in `home`.
    pub fn for_home(&self, home: &str) -> Result<Arc<CompiledRuleSet>, RuleError> {
        // The most specific region of the chain that has a set decides which merge applies.
        let key: String = chain(home)
            .into_iter()
            .filter(|r| self.sets.contains_key(r))
            .collect::<Vec<_>>()
            .join("+");
        if let Some(hit) = self
            .compiled
            .lock()
            .map_err(|_| RuleError {
                pointer: String::new(),
                message: "rule cache poisoned".into(),
            })?
            .get(&key)
        {
            return Ok(hit.clone());
        }
        let (doc, label) = self.merged(home)?;
        let compiled = Arc::new(compile(&doc, label)?);
        if let Ok(mut cache) = self.compiled.lock() {
            cache.insert(key, compiled.clone());
        }
        Ok(compiled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped(region: &str) -> RuleSetDoc {
        let text = SHIPPED
            .iter()
            .find(|(r, _)| *r == region)
            .map(|(_, t)| *t)
            .expect("shipped");
        serde_json::from_str(text).expect("parses")
    }

    fn book() -> RuleBook {
        RuleBook::new(
            SHIPPED
                .iter()
                .map(|(r, _)| {
                    (
                        r.to_string(),
                        Active {
                            version: 1,
                            doc: shipped(r),
                        },
                    )
                })
                .collect(),
        )
    }

    #[test]
    fn every_shipped_set_compiles_alone_and_merged() {
        for (region, _) in SHIPPED {
            compile(&shipped(region), (*region).into()).expect("compiles alone");
        }
        let scored: RuleSetDoc = serde_json::from_str(HANGZHOU_SCORED).expect("parses");
        compile(&scored, "scored".into()).expect("scored compiles");
        for home in ["440106", "610113", "330102", "110101"] {
            book().for_home(home).expect("merged set compiles");
        }
    }

    #[test]
    fn a_province_overrides_one_inherited_rule_and_keeps_the_rest() {
        let (xian, label) = book().merged("610113").expect("merge");
        assert_eq!(label, "000000@1+610000@1");
        let close = xian
            .rules
            .iter()
            .find(|r| r.id == "close-contact")
            .expect("rule");
        assert_eq!(close.colour, hc_domain::Colour::Red);
        assert!(xian.rules.iter().any(|r| r.id == "visit-high"));
        let (gz, _) = book().merged("440106").expect("merge");
        let close = gz
            .rules
            .iter()
            .find(|r| r.id == "close-contact")
            .expect("rule");
        assert_eq!(close.colour, hc_domain::Colour::Yellow);
        assert_eq!(xian.rules.len(), gz.rules.len());
    }

    #[test]
    fn chain_runs_from_national_to_county() {
        assert_eq!(chain("610113"), ["000000", "610000", "610100", "610113"]);
        assert_eq!(chain("610100"), ["000000", "610000", "610100"]);
    }
}

#[cfg(test)]
mod shipped_tests;
