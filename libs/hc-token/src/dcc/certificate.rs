//! The DCC itself (the JSON schema's `DGC`), typed: what its schema requires is required here, so a payload that
//! parses is one of a known shape, and a checkpoint's policy reads fields, not JSON. The fields are those every
//! schema version from 1.0.0 to 1.3.x requires; `ver` is checked only for its form.

use serde::{Deserialize, Serialize};

use super::error::DccError;

/// What a DCC certifies: exactly one of these per certificate. The extended-key-usage OIDs of a signer restrict it
/// to some of them (see `signers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, strum::IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum CertificateType {
    Test,
    Vaccination,
    Recovery,
}

impl CertificateType {
    pub fn name(self) -> &'static str {
        self.into()
    }

    /// The type of a DCC that may not be valid otherwise: the one of `v`, `t` and `r` that is a non-empty array.
    pub fn of_json(dgc: &serde_json::Value) -> Option<Self> {
        let present = |key: &str| {
            dgc.get(key)
                .and_then(|v| v.as_array())
                .is_some_and(|a| !a.is_empty())
        };
        match (present("v"), present("t"), present("r")) {
            (true, false, false) => Some(Self::Vaccination),
            (false, true, false) => Some(Self::Test),
            (false, false, true) => Some(Self::Recovery),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Name {
    #[serde(rename = "fn", default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    /// The family name transliterated to ICAO 9303 (A-Z and `<`): the only part the schema requires.
    #[serde(rename = "fnt")]
    pub family_icao: String,
    #[serde(rename = "gn", default, skip_serializing_if = "Option::is_none")]
    pub given: Option<String>,
    #[serde(rename = "gnt", default, skip_serializing_if = "Option::is_none")]
    pub given_icao: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Vaccination {
    pub tg: String,
    pub vp: String,
    /// The medicinal product (EU/1/20/1528 and so on).
    pub mp: String,
    pub ma: String,
    /// Dose number, of `sd` in the series.
    pub dn: u32,
    pub sd: u32,
    /// Date of vaccination (YYYY-MM-DD).
    pub dt: String,
    pub co: String,
    pub is: String,
    pub ci: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Test {
    pub tg: String,
    /// Type of test: LOINC 94309-2 is a NAA (PCR) test, LP217198-3 a rapid antigen test.
    pub tt: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nm: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ma: Option<String>,
    /// When the sample was collected (RFC 3339).
    pub sc: String,
    /// Result: SNOMED 260415000 is "not detected", 260373001 "detected".
    pub tr: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tc: Option<String>,
    pub co: String,
    pub is: String,
    pub ci: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Recovery {
    pub tg: String,
    /// Date of the first positive NAA test.
    pub fr: String,
    pub co: String,
    pub is: String,
    /// Valid from and until (YYYY-MM-DD).
    pub df: String,
    pub du: String,
    pub ci: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Certificate {
    pub ver: String,
    pub nam: Name,
    /// Date of birth: YYYY-MM-DD, YYYY-MM, YYYY or empty (the schema allows a partly unknown date).
    pub dob: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub v: Vec<Vaccination>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub t: Vec<Test>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub r: Vec<Recovery>,
}

impl Certificate {
    /// Parses and checks a DCC: the schema's required fields, a version, a date of birth of the schema's form, and
    /// exactly one entry of one type.
    pub fn from_json(json: serde_json::Value) -> Result<Self, DccError> {
        let bad = |why: String| DccError::BadCertificate(why);
        let certificate: Self = serde_json::from_value(json).map_err(|e| bad(e.to_string()))?;
        if !is_version(&certificate.ver) {
            return Err(bad("ver is not MAJOR.MINOR.PATCH".into()));
        }
        if !is_partial_date(&certificate.dob) {
            return Err(bad("dob is not YYYY-MM-DD, YYYY-MM, YYYY or empty".into()));
        }
        certificate.kind()?;
        Ok(certificate)
    }

    /// Which type this certificate is: the one of `v`, `t` and `r` holding one entry.
    pub fn kind(&self) -> Result<CertificateType, DccError> {
        match (self.v.len(), self.t.len(), self.r.len()) {
            (1, 0, 0) => Ok(CertificateType::Vaccination),
            (0, 1, 0) => Ok(CertificateType::Test),
            (0, 0, 1) => Ok(CertificateType::Recovery),
            _ => Err(DccError::BadCertificate(
                "a certificate holds exactly one vaccination, test or recovery".into(),
            )),
        }
    }
}

fn is_version(ver: &str) -> bool {
    let parts: Vec<&str> = ver.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// YYYY, YYYY-MM or YYYY-MM-DD, or empty; the schema's years are 1900 to 2099.
fn is_partial_date(dob: &str) -> bool {
    let parts: Vec<&str> = dob.split('-').collect();
    let number = |s: &str, len: usize, range: std::ops::RangeInclusive<u32>| {
        s.len() == len && s.parse::<u32>().is_ok_and(|n| range.contains(&n))
    };
    dob.is_empty()
        || (parts.len() <= 3
            && number(parts[0], 4, 1900..=2099)
            && parts.get(1).is_none_or(|m| number(m, 2, 1..=12))
            && parts.get(2).is_none_or(|d| number(d, 2, 1..=31)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vaccination() -> serde_json::Value {
        json!({"ver": "1.3.0", "nam": {"fnt": "MUSTERMANN"}, "dob": "1964-08",
            "v": [{"tg": "840539006", "vp": "1119349007", "mp": "EU/1/20/1528", "ma": "ORG-100030215",
                   "dn": 2, "sd": 2, "dt": "2021-05-29", "co": "DE", "is": "RKI", "ci": "URN:UVCI:01:DE:X"}]})
    }

    #[test]
    fn a_vaccination_parses_and_is_one() {
        let c = Certificate::from_json(vaccination()).expect("valid");
        assert_eq!(c.kind(), Ok(CertificateType::Vaccination));
        assert_eq!(c.v[0].dn, 2);
    }

    #[test]
    fn two_entries_a_missing_field_or_a_bad_birth_date_are_refused() {
        let mut two = vaccination();
        two["t"] = json!([{"tg": "840539006", "tt": "LP217198-3", "sc": "2021-05-29T10:00:00Z",
            "tr": "260415000", "co": "DE", "is": "RKI", "ci": "URN:UVCI:01:DE:Y"}]);
        assert!(Certificate::from_json(two).is_err());
        let mut missing = vaccination();
        missing["v"][0]
            .as_object_mut()
            .expect("object")
            .remove("mp");
        assert!(Certificate::from_json(missing).is_err());
        for dob in ["1815-08-24", "1964-13", "64-08-01", "1964-08-01-01"] {
            let mut bad = vaccination();
            bad["dob"] = json!(dob);
            assert!(Certificate::from_json(bad).is_err(), "{dob}");
        }
        for dob in ["", "1964", "1964-08-01"] {
            let mut good = vaccination();
            good["dob"] = json!(dob);
            assert!(Certificate::from_json(good).is_ok(), "{dob}");
        }
    }
}
