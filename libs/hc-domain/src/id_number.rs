use std::fmt;

use chrono::{Datelike, NaiveDate};

use crate::{InvalidValue, RegionCode};

/// ISO 7064 MOD 11-2 weights for the first 17 characters (GB 11643-1999, 7.4).
const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
/// Check character for each remainder of the weighted sum modulo 11.
const CHECK: &[u8; 11] = b"10X98765432";

/// An 18-character resident identity number (GB 11643-1999): six-digit region code, birth date, three-digit
/// sequence (odd for men), and an ISO 7064 MOD 11-2 check character. A lower-case `x` is accepted and
/// normalised to `X`.
///
/// `Debug` and `Display` print the masked form on purpose, so that an ID number that reaches a log line by
/// mistake is still not personal data. Use [`IdNumber::expose`] where the full number is really needed
/// (encryption, the blind index).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct IdNumber([u8; 18]);

impl IdNumber {
    /// Parses and checks an ID number; `today` bounds the birth date (passed in so tests are deterministic).
    pub fn parse(raw: &str, today: NaiveDate) -> Result<Self, InvalidValue> {
        let raw = raw.trim();
        let bytes: [u8; 18] = raw.as_bytes().try_into().map_err(|_| {
            InvalidValue::new(format!(
                "must be 18 characters, got {}",
                raw.chars().count()
            ))
        })?;
        let mut digits = bytes;
        digits[17] = digits[17].to_ascii_uppercase();
        if !digits[..17].iter().all(u8::is_ascii_digit)
            || !(digits[17].is_ascii_digit() || digits[17] == b'X')
        {
            return Err(InvalidValue::new(
                "must be 17 digits followed by a digit or X",
            ));
        }
        let text = std::str::from_utf8(&digits).map_err(|_| InvalidValue::new("must be ASCII"))?;

        let region = &text[..6];
        if RegionCode::parse(region).is_err()
            && RegionCode::parse(&format!("{}00", &text[..4])).is_err()
        {
            // Never the digits themselves: an error may be logged or shown, an ID number must not be.
            return Err(InvalidValue::new(
                "its first six digits are not a known GB/T 2260 region code",
            ));
        }
        let birth = NaiveDate::parse_from_str(&text[6..14], "%Y%m%d")
            .map_err(|_| InvalidValue::new("its birth date is not a calendar date"))?;
        if birth > today {
            return Err(InvalidValue::new("birth date is in the future"));
        }
        if birth.year() < 1900 {
            return Err(InvalidValue::new("birth date is before 1900"));
        }
        let expected = check_character(&digits[..17]);
        if digits[17] != expected {
            return Err(InvalidValue::new(
                "check character does not match (ISO 7064 MOD 11-2)",
            ));
        }
        Ok(Self(digits))
    }

    /// The full, normalised number. Only for encryption at rest and the keyed blind index.
    pub fn expose(&self) -> &str {
        // Only ASCII digits and 'X' are ever stored.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// `4401**********0028`: the first four and last four characters.
    pub fn masked(&self) -> String {
        let text = self.expose();
        format!("{}{}{}", &text[..4], "*".repeat(10), &text[14..])
    }
}

/// The ISO 7064 MOD 11-2 check character for the first 17 digits.
pub fn check_character(first17: &[u8]) -> u8 {
    let sum: u32 = first17
        .iter()
        .zip(WEIGHTS)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    CHECK[(sum % 11) as usize]
}

impl fmt::Debug for IdNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdNumber({})", self.masked())
    }
}

impl fmt::Display for IdNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 22).expect("date")
    }

    /// Builds a valid number from its first 17 characters.
    fn with_check(first17: &str) -> String {
        format!("{first17}{}", check_character(first17.as_bytes()) as char)
    }

    #[test]
    fn the_standards_worked_example_is_valid() {
        // GB 11643-1999 annex A example.
        let id = IdNumber::parse("11010519491231002X", today()).expect("valid");
        assert_eq!(id.masked(), "1101**********002X");
    }

    #[test]
    fn lower_case_x_is_normalised() {
        let id = IdNumber::parse("11010519491231002x", today()).expect("valid");
        assert_eq!(id.expose(), "11010519491231002X");
    }

    #[test]
    fn debug_and_display_never_show_the_full_number() {
        let id = IdNumber::parse(&with_check("44010619900307003"), today()).expect("valid");
        assert!(!format!("{id:?} {id}").contains(id.expose()));
    }

    #[test]
    fn each_kind_of_invalid_number_is_rejected_with_its_reason() {
        let cases = [
            ("11010519491231002".to_owned(), "18 characters"),
            ("110105194912310021X".to_owned(), "18 characters"),
            ("110105194912310023".to_owned(), "check character"),
            (with_check("44010619900230003"), "not a calendar date"),
            (with_check("44010620991231003"), "future"),
            (with_check("99999919900307003"), "region"),
            ("4401061990030700A3".to_owned(), "17 digits"),
        ];
        for (raw, reason) in cases {
            let err = IdNumber::parse(&raw, today()).expect_err(&raw);
            assert!(err.reason.contains(reason), "{raw}: {}", err.reason);
            // The reason may reach a log or a screen; no part of the number does.
            assert!(!err.reason.contains(&raw[..4]), "{raw}: {}", err.reason);
        }
    }

    #[test]
    fn a_historical_county_code_under_a_known_prefecture_is_accepted() {
        // 440102 (Dongshan district) was merged into Yuexiu in 2005; people born there keep their numbers.
        assert!(IdNumber::parse(&with_check("44010219800101001"), today()).is_ok());
    }

    #[test]
    fn every_single_digit_change_is_caught_by_the_check_character() {
        let valid = with_check("44010619900307003");
        for pos in 0..17 {
            let mut bytes = valid.clone().into_bytes();
            bytes[pos] = if bytes[pos] == b'9' {
                b'0'
            } else {
                bytes[pos] + 1
            };
            let changed = String::from_utf8(bytes).expect("ascii");
            assert!(
                IdNumber::parse(&changed, today()).is_err(),
                "{changed} accepted"
            );
        }
    }
}
