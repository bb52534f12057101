//! Accepted appeals in force: an official's audited decision that sets a person's colour until a time, applied on
//! top of what the rules say (with the appeal as the first reason).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use hc_domain::Colour;
use uuid::Uuid;

use crate::rules::Reason;
use crate::status::Computed;

/// An accepted appeal in force.
#[derive(Debug, Clone)]
pub struct Override {
    pub appeal: Uuid,
    pub colour: Colour,
    pub until: DateTime<Utc>,
    pub resolution: String,
}

impl Override {
    /// Sets the colour the appeal decided, until its end, and says so first among the reasons.
    pub fn apply(&self, c: &mut Computed) {
        c.reasons.insert(
            0,
            Reason {
                rule: "appeal-override".into(),
                colour: self.colour,
                zh: format!(
                    "申诉核定为{}，至 {}：{}",
                    self.colour.zh_code(),
                    self.until.format("%Y-%m-%d %H:%M UTC"),
                    self.resolution
                ),
                en: format!(
                    "set to {} on appeal until {}: {}",
                    self.colour,
                    self.until.format("%Y-%m-%d %H:%M UTC"),
                    self.resolution
                ),
            },
        );
        c.colour = self.colour;
        c.valid_until = Some(self.until);
        c.rule_set = format!("appeal:{}", self.appeal);
        c.override_appeal = Some(self.appeal);
        c.recheck_at = c.recheck_at.min(self.until);
    }
}

/// The appeals in force for `persons`, the latest resolution of each person.
pub async fn active_overrides(
    client: &impl GenericClient,
    persons: &[Uuid],
) -> Result<HashMap<Uuid, Override>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT DISTINCT ON (person_id) person_id, id, override_colour, override_until, resolution
             FROM appeals WHERE state = 'accepted' AND person_id = ANY($1) AND override_until > now()
             ORDER BY person_id, resolved_at DESC",
            &[&persons],
        )
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            Some((
                r.get(0),
                Override {
                    appeal: r.get(1),
                    colour: r.get::<_, Option<String>>(2)?.parse().ok()?,
                    until: r.get::<_, Option<DateTime<Utc>>>(3)?,
                    resolution: r.get::<_, Option<String>>(4).unwrap_or_default(),
                },
            ))
        })
        .collect())
}
