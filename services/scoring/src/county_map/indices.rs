//! The control and flow indices of a county and day (docs/indices.md §2-§3): each the mean of the components that
//! had data, as a share from 0 to 100, computed from counts served beside them so anyone can recompute them.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::settings::CountyMapSettings;

/// The counts of one county and day (China time) the indices are computed from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct IndexInputs {
    /// People registered with this county as their home.
    pub residents: i64,
    /// People a carrier's trajectory placed in the county that day, and of them those also checked in at a venue
    /// there that day.
    pub carrier_seen: i64,
    pub carrier_checked: i64,
    /// Residents under a quarantine status (close or secondary contact, inbound) that day, and of them those who
    /// declared their health that day.
    pub quarantined: i64,
    pub quarantined_declared: i64,
    /// Residents listed as close contacts that day, and of them those with a nucleic-acid sample that day or the
    /// day before.
    pub contacts: i64,
    pub contacts_tested: i64,
    /// Venue check-ins in the county that day (each scan at the door).
    pub checkins: i64,
    /// People from another home county seen in the county, and residents seen in another county, that day.
    pub visitors_in: i64,
    pub residents_out: i64,
    /// Residents with a status, and of them those green, when the day was computed (null for a day first computed
    /// after it ended: the share then is not the share that day).
    pub with_status: Option<i64>,
    pub green: Option<i64>,
}

/// The two indices, each null when none of its components had data.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Indices {
    pub control: Option<f64>,
    pub flow: Option<f64>,
}

fn share(part: i64, whole: i64) -> Option<f64> {
    (whole > 0).then(|| (part as f64 / whole as f64).clamp(0.0, 1.0))
}

/// A rate per resident against the rate that counts as full, capped at 1.
fn scaled(count: i64, residents: i64, full: f64) -> Option<f64> {
    (residents > 0).then(|| (count as f64 / residents as f64 / full).min(1.0))
}

/// 100 times the mean of the components that are known, rounded to one decimal.
fn index(components: &[Option<f64>]) -> Option<f64> {
    let known: Vec<f64> = components.iter().flatten().copied().collect();
    (!known.is_empty())
        .then(|| (1000.0 * known.iter().sum::<f64>() / known.len() as f64).round() / 10.0)
}

pub fn compute(i: &IndexInputs, t: &CountyMapSettings) -> Indices {
    let control = index(&[
        share(i.carrier_checked, i.carrier_seen),
        share(i.quarantined_declared, i.quarantined),
        share(i.contacts_tested, i.contacts),
    ]);
    let green = match (i.green, i.with_status) {
        (Some(g), Some(w)) => share(g, w),
        _ => None,
    };
    let flow = index(&[
        scaled(i.checkins, i.residents, t.full_checkins_per_resident),
        scaled(
            i.visitors_in + i.residents_out,
            i.residents,
            t.full_travel_per_resident,
        ),
        green,
    ]);
    Indices { control, flow }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::county_map::rules::tests::thresholds;

    #[test]
    fn each_index_is_the_mean_of_its_known_components() {
        let inputs = IndexInputs {
            residents: 1000,
            carrier_seen: 200,
            carrier_checked: 150,
            quarantined: 10,
            quarantined_declared: 5,
            contacts: 0,
            contacts_tested: 0,
            checkins: 500,
            visitors_in: 60,
            residents_out: 40,
            with_status: Some(1000),
            green: Some(900),
        };
        let got = compute(&inputs, &thresholds());
        // Control: (0.75 + 0.5) / 2; the contacts' component has no data.
        assert_eq!(got.control, Some(62.5));
        // Flow: (500/1000/1.0 + min(1, 100/1000/0.2) + 0.9) / 3 = (0.5 + 0.5 + 0.9) / 3.
        assert_eq!(got.flow, Some(63.3));
    }

    #[test]
    fn no_data_is_no_index_and_rates_are_capped() {
        let none = compute(&IndexInputs::default(), &thresholds());
        assert_eq!(
            none,
            Indices {
                control: None,
                flow: None
            }
        );
        let busy = IndexInputs {
            residents: 10,
            checkins: 1_000,
            visitors_in: 1_000,
            ..Default::default()
        };
        assert_eq!(compute(&busy, &thresholds()).flow, Some(100.0));
    }
}
