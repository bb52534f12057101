use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::InvalidValue;

/// The opaque identifier of a person inside the platform. It carries no personal data and is what tokens,
/// events and other services use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PersonId(pub Uuid);

impl PersonId {
    pub fn new() -> Self {
        Self(Uuid::new_v4())
    }
}

impl Default for PersonId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for PersonId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A person's name as registered: 1 to 64 characters, no control characters. `Debug` and `Display` mask it.
#[derive(Clone, PartialEq, Eq)]
pub struct PersonName(String);

impl PersonName {
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let name = raw.trim();
        let len = name.chars().count();
        if len == 0 {
            return Err(InvalidValue::new("must not be empty"));
        }
        if len > 64 {
            return Err(InvalidValue::new("must be at most 64 characters"));
        }
        if name.chars().any(char::is_control) {
            return Err(InvalidValue::new("must not contain control characters"));
        }
        Ok(Self(name.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `张*` for two characters, `张*三` for three, the first and last character kept for longer names.
    pub fn masked(&self) -> String {
        let chars: Vec<char> = self.0.chars().collect();
        match chars.as_slice() {
            [only] => format!("{only}"),
            [first, _] => format!("{first}*"),
            [first, middle @ .., last] => format!("{first}{}{last}", "*".repeat(middle.len())),
            [] => String::new(),
        }
    }
}

impl fmt::Debug for PersonName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PersonName({})", self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_masked_in_the_middle() {
        let mask = |raw: &str| PersonName::parse(raw).expect(raw).masked();
        assert_eq!(mask("张三"), "张*");
        assert_eq!(mask("欧阳娜娜"), "欧**娜");
        assert_eq!(mask("Li"), "L*");
    }

    #[test]
    fn empty_long_and_control_names_are_rejected() {
        assert!(PersonName::parse("  ").is_err());
        assert!(PersonName::parse(&"名".repeat(65)).is_err());
        assert!(PersonName::parse("a\u{0}b").is_err());
    }
}
