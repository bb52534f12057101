use serde::{Deserialize, Serialize};

use crate::InvalidValue;

/// A health-code colour. `Orange` exists only in the inbound travellers' (international) variant, which
/// uses green, yellow and orange. The numbers are the code token's (docs/token-format.md) and the order of severity.
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
    strum::FromRepr,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase", parse_err_ty = InvalidValue, parse_err_fn = unknown_colour)]
pub enum Colour {
    Green = 0,
    Yellow = 1,
    Orange = 2,
    Red = 3,
}

fn unknown_colour(_: &str) -> InvalidValue {
    InvalidValue::new("must be one of green, yellow, orange, red")
}

impl Colour {
    pub fn as_str(self) -> &'static str {
        self.into()
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
