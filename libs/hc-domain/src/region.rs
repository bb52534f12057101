use std::collections::HashMap;
use std::fmt;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

use crate::InvalidValue;

/// The GB/T 2260 table shipped with the crate (see the file's header for source and licence).
const TABLE: &str = include_str!("../data/gb2260.csv");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RegionLevel {
    Province,
    Prefecture,
    County,
}

struct Entry {
    level: RegionLevel,
    name: &'static str,
}

static REGIONS: LazyLock<HashMap<u32, Entry>> = LazyLock::new(|| {
    TABLE
        .lines()
        .filter(|line| !line.starts_with('#') && !line.starts_with("code,"))
        .filter_map(|line| {
            let mut cols = line.splitn(3, ',');
            let code = cols.next()?.parse().ok()?;
            let level = match cols.next()? {
                "province" => RegionLevel::Province,
                "prefecture" => RegionLevel::Prefecture,
                _ => RegionLevel::County,
            };
            Some((
                code,
                Entry {
                    level,
                    name: cols.next()?,
                },
            ))
        })
        .collect()
});

/// The numeric codes a six-digit code lies in, itself first: `[itself, its prefecture, its province]`
/// (`440106` -> `[440106, 440100, 440000]`; a prefecture or a province repeats itself). The one place the
/// hierarchy's arithmetic lives; a hot path over codes stored as numbers uses it without a table lookup.
pub fn enclosing_codes(code: u32) -> [u32; 3] {
    [code, code / 100 * 100, code / 10_000 * 10_000]
}

/// A six-digit GB/T 2260 administrative division code that exists in the shipped table.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RegionCode(u32);

impl RegionCode {
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        if raw.len() != 6 || !raw.bytes().all(|b| b.is_ascii_digit()) {
            return Err(InvalidValue::new(
                "must be a six-digit GB/T 2260 region code",
            ));
        }
        let code: u32 = raw
            .parse()
            .map_err(|_| InvalidValue::new("must be six digits"))?;
        if !REGIONS.contains_key(&code) {
            return Err(InvalidValue::new(format!(
                "{raw} is not a known GB/T 2260 region code"
            )));
        }
        Ok(Self(code))
    }

    pub fn level(self) -> RegionLevel {
        REGIONS[&self.0].level
    }

    pub fn name(self) -> &'static str {
        REGIONS[&self.0].name
    }

    /// The province this region belongs to (`440106` -> `440000`).
    pub fn province(self) -> RegionCode {
        RegionCode(self.0 / 10_000 * 10_000)
    }

    /// The prefecture-level division this region belongs to (`440106` -> `440100`; a prefecture is its own), if the
    /// table has one (a province has none, nor have the counties of Beijing, Shanghai, Tianjin and Chongqing).
    pub fn prefecture(self) -> Option<RegionCode> {
        let [_, prefecture, _] = enclosing_codes(self.0);
        (self.level() != RegionLevel::Province && REGIONS.contains_key(&prefecture))
            .then_some(RegionCode(prefecture))
    }

    /// Whether `other` lies inside this region (a province contains its cities and counties, a prefecture its
    /// counties, every region itself). Used for an official client's region scope.
    pub fn contains(self, other: RegionCode) -> bool {
        let [county, prefecture, province] = enclosing_codes(other.0);
        match self.level() {
            RegionLevel::Province => self.0 == province,
            RegionLevel::Prefecture => self.0 == prefecture,
            RegionLevel::County => self.0 == county,
        }
    }

    /// The codes inside this region, first and last, as text (`440000` -> `440000`..`449999`, `440100` ->
    /// `440100`..`440199`, a county itself): for range queries over codes stored as text.
    pub fn span(self) -> (String, String) {
        let [_, prefecture, province] = enclosing_codes(self.0);
        let last = if self.0 == province {
            province + 9_999
        } else if self.0 == prefecture {
            prefecture + 99
        } else {
            self.0
        };
        (self.to_string(), format!("{last:06}"))
    }

    /// Every county-level code in the shipped table, in order.
    pub fn counties() -> Vec<RegionCode> {
        let mut all: Vec<RegionCode> = REGIONS
            .iter()
            .filter(|(_, e)| e.level == RegionLevel::County)
            .map(|(c, _)| RegionCode(*c))
            .collect();
        all.sort();
        all
    }
}

impl fmt::Display for RegionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:06}", self.0)
    }
}

impl fmt::Debug for RegionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RegionCode({self})")
    }
}

impl TryFrom<String> for RegionCode {
    type Error = InvalidValue;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl From<RegionCode> for String {
    fn from(code: RegionCode) -> Self {
        code.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_covers_all_provinces_cities_and_counties() {
        assert!(REGIONS.len() > 3_000, "only {} codes", REGIONS.len());
        let provinces = REGIONS
            .values()
            .filter(|e| e.level == RegionLevel::Province)
            .count();
        assert_eq!(
            provinces, 34,
            "31 mainland provinces plus Taiwan, Hong Kong, Macau"
        );
    }

    #[test]
    fn known_codes_parse_with_their_level_and_name() {
        let tianhe = RegionCode::parse("440106").expect("Tianhe district");
        assert_eq!(tianhe.level(), RegionLevel::County);
        assert_eq!(tianhe.name(), "天河区");
        assert_eq!(tianhe.province().to_string(), "440000");
        assert_eq!(
            RegionCode::parse("440100").map(RegionCode::level),
            Ok(RegionLevel::Prefecture)
        );
        assert_eq!(
            RegionCode::parse("110000").map(RegionCode::level),
            Ok(RegionLevel::Province)
        );
    }

    #[test]
    fn unknown_or_malformed_codes_are_rejected() {
        for raw in ["999999", "44010", "4401066", "44O106", "", "440199"] {
            assert!(RegionCode::parse(raw).is_err(), "{raw} accepted");
        }
    }

    #[test]
    fn containment_follows_the_hierarchy() {
        let guangdong = RegionCode::parse("440000").expect("province");
        let guangzhou = RegionCode::parse("440100").expect("city");
        let tianhe = RegionCode::parse("440106").expect("county");
        let shenzhen = RegionCode::parse("440300").expect("city");
        assert!(
            guangdong.contains(tianhe) && guangzhou.contains(tianhe) && tianhe.contains(tianhe)
        );
        assert!(!shenzhen.contains(tianhe) && !tianhe.contains(guangzhou));
        assert_eq!(guangdong.span(), ("440000".into(), "449999".into()));
        assert_eq!(guangzhou.span(), ("440100".into(), "440199".into()));
        assert_eq!(tianhe.span(), ("440106".into(), "440106".into()));
        assert_eq!(enclosing_codes(440106), [440106, 440100, 440000]);
        assert_eq!(tianhe.prefecture(), Some(guangzhou));
        assert_eq!(guangzhou.prefecture(), Some(guangzhou));
        assert_eq!(guangdong.prefecture(), None);
        assert_eq!(
            RegionCode::parse("110101").expect("county").prefecture(),
            None
        );
    }
}
