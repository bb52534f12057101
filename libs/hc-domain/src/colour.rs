use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::InvalidValue;

/// A health-code colour. `Orange` exists only in the inbound travellers' (international) variant, which
/// uses green, yellow and orange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Colour {
    Green,
    Yellow,
    Orange,
    Red,
}

impl Colour {
    pub fn as_str(self) -> &'static str {
        match self {
            Colour::Green => "green",
            Colour::Yellow => "yellow",
            Colour::Orange => "orange",
            Colour::Red => "red",
        }
    }

    /// The colour's character, as in 绿码 or "黄码不可进入".
    pub fn zh(self) -> &'static str {
        match self {
            Colour::Green => "绿",
            Colour::Yellow => "黄",
            Colour::Orange => "橙",
            Colour::Red => "红",
        }
    }

    /// The code's name in Chinese: 绿码, 黄码, 橙码, 红码.
    pub fn zh_code(self) -> String {
        format!("{}码", self.zh())
    }
}

impl fmt::Display for Colour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Colour {
    type Err = InvalidValue;
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        match raw {
            "green" => Ok(Colour::Green),
            "yellow" => Ok(Colour::Yellow),
            "orange" => Ok(Colour::Orange),
            "red" => Ok(Colour::Red),
            _ => Err(InvalidValue::new(
                "must be one of green, yellow, orange, red",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_round_trip_through_text_and_order_by_severity() {
        for c in [Colour::Green, Colour::Yellow, Colour::Orange, Colour::Red] {
            assert_eq!(c.as_str().parse::<Colour>(), Ok(c));
        }
        assert!(Colour::Green < Colour::Yellow && Colour::Orange < Colour::Red);
        assert!("blue".parse::<Colour>().is_err());
        assert_eq!(Colour::Red.zh_code(), "红码");
        assert_eq!(Colour::Orange.zh(), "橙");
    }
}
