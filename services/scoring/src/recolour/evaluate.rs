//! Evaluating a loaded chunk: each person's fact document under their region's rules, an appeal in force on top,
//! and when to look at them again. CPU only, on the blocking pool.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use hc_domain::china_time::{next_midnight, start_of};
use uuid::Uuid;

use super::overrides::Override;
use super::snapshot::Snapshot;
use crate::facts::document;
use crate::loader::Loaded;
use crate::rules::{self, Evaluator};
use crate::status::Computed;

/// Evaluates a loaded chunk (CPU only).
pub fn evaluate_all(
    loaded: &[Loaded],
    snapshot: &Snapshot,
    overrides: &HashMap<Uuid, Override>,
    now: DateTime<Utc>,
) -> anyhow::Result<(Vec<Computed>, u64)> {
    let mut evaluator = Evaluator::default();
    let mut out = Vec::with_capacity(loaded.len());
    for l in loaded {
        let subject = &l.subject;
        let set = snapshot.book.for_home(&subject.home_region)?;
        let facts = document(&l.facts, &subject.home_region, now, &snapshot.risk);
        let outcome = evaluator.evaluate(&set, &facts);
        let c = computed(
            subject.person_id,
            outcome,
            &set.label,
            &facts,
            overrides.get(&subject.person_id),
            now,
        );
        out.push(c);
    }
    Ok((out, evaluator.evaluations))
}

/// The status from an outcome, with an override applied. Time alone changes colours at midnight (every
/// `days_ago` moves on), so everything is rechecked then, or when an override ends if that is sooner.
fn computed(
    person_id: Uuid,
    outcome: rules::Outcome,
    label: &str,
    facts: &serde_json::Value,
    over: Option<&Override>,
    now: DateTime<Utc>,
) -> Computed {
    let negative_test_at = facts["nat"]["negative"]["time"]
        .as_str()
        .and_then(|t| t.parse().ok());
    let mut c = Computed {
        person_id,
        colour: outcome.colour,
        variant: outcome.variant.as_str(),
        reasons: outcome.reasons,
        requirements: outcome.requirements,
        valid_until: outcome.valid_until.map(start_of),
        rule_set: label.to_owned(),
        negative_test_at,
        override_appeal: None,
        recheck_at: next_midnight(now),
    };
    if let Some(o) = over {
        o.apply(&mut c);
    }
    c
}
