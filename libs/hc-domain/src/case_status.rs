use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::InvalidValue;

/// A status on a health commission's case list, as the lists name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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

impl CaseStatus {
    pub const ALL: [CaseStatus; 7] = [
        CaseStatus::Confirmed,
        CaseStatus::Suspected,
        CaseStatus::Asymptomatic,
        CaseStatus::CloseContact,
        CaseStatus::SecondaryContact,
        CaseStatus::Recovered,
        CaseStatus::Inbound,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CaseStatus::Confirmed => "confirmed",
            CaseStatus::Suspected => "suspected",
            CaseStatus::Asymptomatic => "asymptomatic",
            CaseStatus::CloseContact => "close_contact",
            CaseStatus::SecondaryContact => "secondary_contact",
            CaseStatus::Recovered => "recovered",
            CaseStatus::Inbound => "inbound",
        }
    }

    /// Carries the virus (confirmed or asymptomatic): whoever travelled with such a person is checked at a gate.
    pub fn is_infectious(self) -> bool {
        matches!(self, CaseStatus::Confirmed | CaseStatus::Asymptomatic)
    }

    /// "confirmed, suspected, …", for an error that lists what is allowed.
    pub fn listed() -> String {
        CaseStatus::ALL.map(CaseStatus::as_str).join(", ")
    }
}

impl fmt::Display for CaseStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CaseStatus {
    type Err = InvalidValue;
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        CaseStatus::ALL
            .into_iter()
            .find(|s| s.as_str() == raw)
            .ok_or_else(|| InvalidValue::new(format!("must be one of {}", CaseStatus::listed())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_statuses_round_trip_through_text_and_serde() {
        for s in CaseStatus::ALL {
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
            .into_iter()
            .filter(|s| s.is_infectious())
            .collect();
        assert_eq!(
            infectious,
            [CaseStatus::Confirmed, CaseStatus::Asymptomatic]
        );
    }
}
