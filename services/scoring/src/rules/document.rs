//! A rule set as its authors write it (JSON). `docs/scoring-rules.md` is the reference; `rules/*.json` are the
//! shipped sets.

use hc_domain::Colour;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Text in the platform's two languages. `{fact.path}` placeholders are filled from the person's facts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Text {
    pub zh: String,
    pub en: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Model {
    /// Each rule that fires gives its colour; the most severe wins.
    #[default]
    Rules,
    /// Hangzhou's model: dimensions add up to a score, thresholds turn it into a colour.
    Scored,
}

/// Which people a rule applies to: everyone, or international arrivals (`inbound.active`), whose palette is
/// green / yellow / orange.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Variant {
    #[default]
    Standard,
    International,
}

impl Variant {
    pub fn as_str(self) -> &'static str {
        match self {
            Variant::Standard => "standard",
            Variant::International => "international",
        }
    }

    /// The colours a rule of this variant may give (green is what is left when nothing fires).
    pub fn palette(self) -> &'static [Colour] {
        match self {
            Variant::Standard => &[Colour::Yellow, Colour::Red],
            Variant::International => &[Colour::Yellow, Colour::Orange],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleDoc {
    /// Stable id: reasons name it, and a region's set overrides the inherited rule of the same id.
    pub id: String,
    #[schema(value_type = String, example = "green")]
    pub colour: Colour,
    #[serde(default)]
    pub variant: Variant,
    /// JsonLogic over the facts; the rule fires when it is truthy.
    #[schema(value_type = Object)]
    pub when: Value,
    /// JsonLogic giving the number of days from today until this reason lapses if nothing new happens (for
    /// valid-until); absent when only a new fact can lift it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub expires_in_days: Option<Value>,
    pub reason: Text,
    /// What the person must do to lift it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requirement: Option<Text>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DimensionDoc {
    pub id: String,
    /// JsonLogic giving this dimension's score; clamped to 0..=max.
    #[schema(value_type = Object)]
    pub score: Value,
    pub max: f64,
    pub reason: Text,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ThresholdDoc {
    #[schema(value_type = String, example = "green")]
    pub colour: Colour,
    /// The total score from which this colour applies.
    pub at: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScoredDoc {
    pub dimensions: Vec<DimensionDoc>,
    pub thresholds: Vec<ThresholdDoc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub expires_in_days: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requirement: Option<Text>,
}

fn yes() -> bool {
    true
}

/// One version of one region's rule set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleSetDoc {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Start from the enclosing region's set (province, then national) and change it; false starts afresh.
    #[serde(default = "yes")]
    pub inherit: bool,
    /// When this version comes into force (default: when it is stored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_from: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(default)]
    pub model: Model,
    /// For `rules`: added to the inherited rules, replacing those of the same id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<RuleDoc>,
    /// Inherited rule ids this region switches off.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disable: Vec<String>,
    /// For `scored`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scored: Option<ScoredDoc>,
}
