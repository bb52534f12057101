//! The claims a code carries, and their CWT form: the registered `iss` (1), `exp` (4) and `iat` (6), and one
//! private-use claim (`HCQ_CLAIM`) holding a map with small integer keys, as the EU certificate nests its payload.

use ciborium::value::{Integer, Value};
use coset::cwt::{ClaimName, ClaimsSet, ClaimsSetBuilder, Timestamp};
use hc_domain::Colour;

use crate::error::DecodeError;

/// The private-use CWT claim (RFC 8392: keys below -65536 are private use) that holds the health-code claims.
pub const HCQ_CLAIM: i64 = -65537;

// Keys inside the HCQ claim.
const SUBJECT: i64 = 1;
const COLOUR: i64 = 2;
const STATUS_VERSION: i64 = 3;
const NEGATIVE_TEST_AT: i64 = 4;
const FLAGS: i64 = 5;
const STATUS_AT: i64 = 6;

/// Flags, as bits of an unsigned integer. Bits not defined here are kept as they are, so a newer issuer's flags
/// pass through an older verifier unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flags(pub u64);

impl Flags {
    /// The status is the last one known, served while scoring could not be reached; `status_at` says how old.
    pub const STALE: u64 = 1;
    /// The international variant of the colours (green, yellow, orange), for inbound travellers.
    pub const INTERNATIONAL: u64 = 2;

    pub fn stale(self) -> bool {
        self.0 & Self::STALE != 0
    }

    pub fn international(self) -> bool {
        self.0 & Self::INTERNATIONAL != 0
    }

    pub fn with(self, bit: u64, on: bool) -> Self {
        if on {
            Self(self.0 | bit)
        } else {
            Self(self.0 & !bit)
        }
    }
}

/// What a code says. Times are Unix seconds. Nothing here names a person: `subject` is an opaque pseudonym that only
/// the issuing platform can resolve (see [`crate::Pseudonyms`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeClaims {
    /// The issuing platform's region code (six digits, e.g. `440100`).
    pub issuer: String,
    pub issued_at: i64,
    pub expires_at: i64,
    pub subject: Vec<u8>,
    pub colour: Colour,
    /// The status version the colour comes from (grows with every change of the person's status).
    pub status_version: u64,
    /// The latest negative test, to the hour (rounded down: never younger than it was).
    pub negative_test_at: Option<i64>,
    /// When the status was computed: present only on stale codes, so that fresh codes of one person on
    /// different days carry no shared timestamp.
    pub status_at: Option<i64>,
    pub flags: Flags,
}

fn int(i: i64) -> Value {
    Value::Integer(Integer::from(i))
}

impl CodeClaims {
    pub(crate) fn to_claims_set(&self) -> ClaimsSet {
        let mut inner = vec![
            (int(SUBJECT), Value::Bytes(self.subject.clone())),
            (int(COLOUR), Value::Integer((self.colour as u64).into())),
            (
                int(STATUS_VERSION),
                Value::Integer(self.status_version.into()),
            ),
        ];
        if let Some(t) = self.negative_test_at {
            inner.push((int(NEGATIVE_TEST_AT), int(t)));
        }
        if self.flags.0 != 0 {
            inner.push((int(FLAGS), Value::Integer(self.flags.0.into())));
        }
        if let Some(t) = self.status_at {
            inner.push((int(STATUS_AT), int(t)));
        }
        ClaimsSetBuilder::new()
            .issuer(self.issuer.clone())
            .expiration_time(Timestamp::WholeSeconds(self.expires_at))
            .issued_at(Timestamp::WholeSeconds(self.issued_at))
            .private_claim(HCQ_CLAIM, Value::Map(inner))
            .build()
    }

    pub(crate) fn from_claims_set(set: ClaimsSet) -> Result<Self, DecodeError> {
        let bad = |what: &str| DecodeError::BadClaims(what.to_owned());
        let seconds = |t: Option<Timestamp>, name: &str| match t {
            Some(Timestamp::WholeSeconds(s)) => Ok(s),
            Some(Timestamp::FractionalSeconds(_)) => {
                Err(bad(&format!("{name} must be whole seconds")))
            }
            None => Err(bad(&format!("{name} is missing"))),
        };
        let issuer = set.issuer.ok_or_else(|| bad("iss is missing"))?;
        let expires_at = seconds(set.expiration_time, "exp")?;
        let issued_at = seconds(set.issued_at, "iat")?;
        let inner = set
            .rest
            .into_iter()
            .find_map(|(name, value)| (name == ClaimName::PrivateUse(HCQ_CLAIM)).then_some(value))
            .ok_or_else(|| bad("the health-code claim is missing"))?;
        let Value::Map(entries) = inner else {
            return Err(bad("the health-code claim is not a map"));
        };
        let mut subject = None;
        let mut colour = None;
        let mut status_version = None;
        let mut negative_test_at = None;
        let mut status_at = None;
        let mut flags = Flags::default();
        for (key, value) in entries {
            let Some(key) = key.as_integer().and_then(|k| i64::try_from(k).ok()) else {
                return Err(bad("a health-code claim key is not an integer"));
            };
            let unsigned = |v: &Value| v.as_integer().and_then(|i| u64::try_from(i).ok());
            let signed = |v: &Value| v.as_integer().and_then(|i| i64::try_from(i).ok());
            match key {
                SUBJECT => {
                    subject = Some(
                        value
                            .into_bytes()
                            .map_err(|_| bad("subject is not bytes"))?,
                    )
                }
                COLOUR => {
                    colour = Some(
                        unsigned(&value)
                            .and_then(|n| Colour::from_repr(usize::try_from(n).ok()?))
                            .ok_or_else(|| bad("colour is not 0 to 3"))?,
                    )
                }
                STATUS_VERSION => {
                    status_version = Some(
                        unsigned(&value).ok_or_else(|| bad("status version is not unsigned"))?,
                    )
                }
                NEGATIVE_TEST_AT => {
                    negative_test_at = Some(
                        signed(&value)
                            .ok_or_else(|| bad("negative test time is not an integer"))?,
                    )
                }
                FLAGS => {
                    flags = Flags(unsigned(&value).ok_or_else(|| bad("flags are not unsigned"))?)
                }
                STATUS_AT => {
                    status_at =
                        Some(signed(&value).ok_or_else(|| bad("status time is not an integer"))?)
                }
                // Keys this version does not know are ignored, so issuers can add claims.
                _ => {}
            }
        }
        Ok(Self {
            issuer,
            issued_at,
            expires_at,
            subject: subject.ok_or_else(|| bad("subject is missing"))?,
            colour: colour.ok_or_else(|| bad("colour is missing"))?,
            status_version: status_version.ok_or_else(|| bad("status version is missing"))?,
            negative_test_at,
            status_at,
            flags,
        })
    }
}
