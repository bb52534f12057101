use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::InvalidValue;

/// What a caller may do. Identity grants scopes, the access token's `scope` claim carries them (space-separated,
/// RFC 8693), and every service checks them.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::VariantArray,
)]
#[strum(parse_err_ty = InvalidValue, parse_err_fn = unknown_scope)]
pub enum Scope {
    /// A signed-in citizen: their own status, code, declarations and appeals.
    #[strum(serialize = "citizen")]
    Citizen,
    #[strum(serialize = "import:nat")]
    ImportNat,
    #[strum(serialize = "import:cases")]
    ImportCases,
    #[strum(serialize = "import:visits")]
    ImportVisits,
    #[strum(serialize = "risk:write")]
    RiskWrite,
    #[strum(serialize = "rules:write")]
    RulesWrite,
    #[strum(serialize = "verify")]
    Verify,
    #[strum(serialize = "verify:id")]
    VerifyId,
    #[strum(serialize = "person:read")]
    PersonRead,
    #[strum(serialize = "trace:read")]
    TraceRead,
    #[strum(serialize = "appeals:resolve")]
    AppealsResolve,
    #[strum(serialize = "staff:read")]
    StaffRead,
    #[strum(serialize = "admin")]
    Admin,
}

fn unknown_scope(_: &str) -> InvalidValue {
    InvalidValue::new("is not a known scope")
}

impl Scope {
    pub const ALL: &[Scope] = <Scope as strum::VariantArray>::VARIANTS;

    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Whether an official API client may be granted it (`citizen` comes only with a citizen's sign-in).
    pub fn is_official(self) -> bool {
        self != Scope::Citizen
    }

    fn bit(self) -> u16 {
        1 << self as u16
    }
}

/// The scopes of one token, parsed once when the token is read. On the wire they are the space-separated `scope`
/// claim; a name this build does not know is left out (a newer identity may grant scopes that no check here needs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scopes(u16);

impl Scopes {
    pub fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL
            .iter()
            .copied()
            .filter(move |s| self.contains(*s))
    }

    /// Reads a `scope` claim.
    pub fn parse(claim: &str) -> Self {
        claim.split(' ').filter_map(|s| s.parse().ok()).collect()
    }
}

impl From<Scope> for Scopes {
    fn from(scope: Scope) -> Self {
        Scopes(scope.bit())
    }
}

impl FromIterator<Scope> for Scopes {
    fn from_iter<I: IntoIterator<Item = Scope>>(scopes: I) -> Self {
        Scopes(scopes.into_iter().fold(0, |bits, s| bits | s.bit()))
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(Scope::as_str).collect();
        f.write_str(&names.join(" "))
    }
}

impl Serialize for Scopes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Scopes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let claim = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Ok(Scopes::parse(&claim))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scope_round_trips_through_its_name() {
        for &s in Scope::ALL {
            assert_eq!(s.as_str().parse::<Scope>(), Ok(s));
        }
        assert!("import".parse::<Scope>().is_err());
        assert!("Admin".parse::<Scope>().is_err());
    }

    #[test]
    fn a_claim_is_parsed_into_a_set_and_written_back_in_one_order() {
        let scopes = Scopes::parse("verify:id import:nat verify");
        assert!(scopes.contains(Scope::Verify) && scopes.contains(Scope::VerifyId));
        assert!(scopes.contains(Scope::ImportNat));
        assert!(!scopes.contains(Scope::Admin) && !scopes.contains(Scope::Citizen));
        assert_eq!(scopes.to_string(), "import:nat verify verify:id");
        assert_eq!(Scopes::parse(&scopes.to_string()), scopes);
    }

    #[test]
    fn unknown_names_in_a_claim_grant_nothing() {
        let scopes = Scopes::parse("admin:everything  verify");
        assert_eq!(scopes.iter().collect::<Vec<_>>(), vec![Scope::Verify]);
        assert_eq!(Scopes::parse(""), Scopes::default());
    }

    #[test]
    fn the_claim_is_a_string_in_json() {
        let scopes: Scopes = [Scope::Admin, Scope::TraceRead].into_iter().collect();
        let json = serde_json::to_string(&scopes).expect("json");
        assert_eq!(json, r#""trace:read admin""#);
        assert_eq!(serde_json::from_str::<Scopes>(&json).expect("back"), scopes);
    }

    #[test]
    fn only_a_citizen_sign_in_carries_the_citizen_scope() {
        assert!(!Scope::Citizen.is_official());
        assert!(Scope::ALL.iter().filter(|s| s.is_official()).count() == 12);
    }
}
