use std::fmt;

use crate::InvalidValue;

/// A mainland China mobile number, normalised to its 11 digits (`+86`, `0086`, spaces and dashes dropped).
/// `Debug` and `Display` mask the middle four digits.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Phone(String);

impl Phone {
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let compact: String = raw.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
        let digits = compact
            .strip_prefix("+86")
            .or_else(|| compact.strip_prefix("0086"))
            .unwrap_or(&compact);
        let bytes = digits.as_bytes();
        if bytes.len() != 11 || !bytes.iter().all(u8::is_ascii_digit) {
            return Err(InvalidValue::new(
                "must be an 11-digit mainland mobile number",
            ));
        }
        if bytes[0] != b'1' || !(b'3'..=b'9').contains(&bytes[1]) {
            return Err(InvalidValue::new("must start with 13-19"));
        }
        Ok(Self(digits.to_owned()))
    }

    /// The full number. Only for encryption, the blind index and the SMS gateway.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `138****1234`.
    pub fn masked(&self) -> String {
        format!("{}****{}", &self.0[..3], &self.0[7..])
    }
}

impl fmt::Debug for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Phone({})", self.masked())
    }
}

impl fmt::Display for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_spellings_normalise_to_eleven_digits() {
        for raw in ["13812341234", "+86 138 1234 1234", "0086-138-1234-1234"] {
            assert_eq!(Phone::parse(raw).expect(raw).expose(), "13812341234");
        }
        assert_eq!(
            Phone::parse("13812341234").expect("valid").masked(),
            "138****1234"
        );
    }

    #[test]
    fn landlines_and_short_numbers_are_rejected() {
        for raw in [
            "02012345678",
            "1381234123",
            "138123412345",
            "12812341234",
            "1381234123a",
            "",
        ] {
            assert!(Phone::parse(raw).is_err(), "{raw} accepted");
        }
    }
}
