use serde::{Deserialize, Serialize};

use crate::InvalidValue;

/// A status on a health commission's case list, as the lists name them.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case", parse_err_ty = InvalidValue, parse_err_fn = unknown_status)]
pub enum CaseStatus {
    Confirmed,
    Suspected,
    Asymptomatic,
    CloseContact,
    SecondaryContact,
    Recovered,
    /// An international arrival under the inbound rules (the variant colours green / yellow / orange).
    Inbound,
}

fn unknown_status(_: &str) -> InvalidValue {
    InvalidValue::new(format!("must be one of {}", CaseStatus::listed()))
}

impl CaseStatus {
    pub const ALL: &[CaseStatus] = <CaseStatus as strum::VariantArray>::VARIANTS;

    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Carries the virus (confirmed or asymptomatic): whoever travelled with such a person is checked at a gate.
    pub fn is_infectious(self) -> bool {
        matches!(self, CaseStatus::Confirmed | CaseStatus::Asymptomatic)
    }

    /// "confirmed, suspected, …", for an error that lists what is allowed.
    pub fn listed() -> String {
        CaseStatus::ALL
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_statuses_round_trip_through_text_and_serde() {
        for &s in CaseStatus::ALL {
            assert_eq!(s.as_str().parse::<CaseStatus>(), Ok(s));
            assert_eq!(
                serde_json::to_value(s).expect("json"),
                serde_json::Value::from(s.as_str())
            );
        }
        assert!("Confirmed".parse::<CaseStatus>().is_err());
        assert_eq!(
            CaseStatus::listed(),
            "confirmed, suspected, asymptomatic, close_contact, secondary_contact, recovered, inbound"
        );
    }

    #[test]
    fn only_confirmed_and_asymptomatic_cases_are_infectious() {
        let infectious: Vec<_> = CaseStatus::ALL
            .iter()
            .copied()
            .filter(|s| s.is_infectious())
            .collect();
        assert_eq!(
            infectious,
            [CaseStatus::Confirmed, CaseStatus::Asymptomatic]
        );
    }
}
