use serde::{Deserialize, Serialize};

use crate::InvalidValue;

/// A body temperature in degrees Celsius, as declared: 35.0 to 42.0, one decimal (a reading outside that range
/// is a thermometer or typing error, not a temperature).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Temperature(f64);

impl Temperature {
    /// At or above this a declaration counts as a fever (the 37.3 °C used by Chinese fever clinics).
    pub const FEVER: f64 = 37.3;

    pub fn parse(celsius: f64) -> Result<Self, InvalidValue> {
        if !celsius.is_finite() || !(35.0..=42.0).contains(&celsius) {
            return Err(InvalidValue::new("must be between 35.0 and 42.0 °C"));
        }
        Ok(Self((celsius * 10.0).round() / 10.0))
    }

    pub fn celsius(self) -> f64 {
        self.0
    }

    pub fn is_fever(self) -> bool {
        self.0 >= Self::FEVER
    }
}

impl TryFrom<f64> for Temperature {
    type Error = InvalidValue;
    fn try_from(celsius: f64) -> Result<Self, Self::Error> {
        Self::parse(celsius)
    }
}

impl From<Temperature> for f64 {
    fn from(t: Temperature) -> Self {
        t.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plausible_temperatures_round_to_one_decimal() {
        assert_eq!(
            Temperature::parse(36.54).map(Temperature::celsius),
            Ok(36.5)
        );
        assert!(Temperature::parse(37.3).expect("fever").is_fever());
        assert!(!Temperature::parse(37.2).expect("normal").is_fever());
        assert!(
            Temperature::parse(35.0).is_ok() && Temperature::parse(42.0).is_ok(),
            "bounds are inclusive"
        );
    }

    #[test]
    fn implausible_temperatures_are_rejected() {
        for t in [34.9, 42.1, f64::NAN, f64::INFINITY, 98.6] {
            assert!(Temperature::parse(t).is_err(), "{t} accepted");
        }
    }
}
