//! Typed events between services: one struct per event, encoded by its publisher and decoded by every consumer
//! through the same code, so that the two cannot drift apart. A payload that does not decode is [`Malformed`]
//! (the consumer dead-letters it); only a failure of the consumer's own storage is retried.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::streams::{Delivered, Malformed};

/// The schema version every event carries, as `MAJOR.MINOR`. Within a stream only the minor version moves: a
/// new optional field, which older consumers ignore. A change they could not ignore is a new stream
/// (`facts.imported.v2`), published beside the old one until every consumer reads it. See docs/events.md.
pub const SCHEMA_VERSION: &str = "1.2";
const SCHEMA_FIELD: &str = "schema_version";

/// Events from before versions were written are 1.0; a major version other than ours is malformed here.
fn check_schema(event: &Delivered) -> Result<(), Malformed> {
    let Some(version) = event.payload.get(SCHEMA_FIELD) else {
        return Ok(());
    };
    let major = version
        .as_str()
        .and_then(|v| v.split('.').next())
        .and_then(|m| m.parse::<u32>().ok());
    if major == Some(1) {
        Ok(())
    } else {
        Err(Malformed(format!(
            "{}: schema version {version} is not understood here",
            event.event_id
        )))
    }
}

fn versioned(mut payload: serde_json::Value) -> serde_json::Value {
    if let Some(fields) = payload.as_object_mut() {
        fields.insert(SCHEMA_FIELD.into(), SCHEMA_VERSION.into());
    }
    payload
}

/// An event's wire form, serialised as it is, with the schema version.
fn encode_wire<T: Serialize>(wire: &T) -> serde_json::Value {
    versioned(serde_json::to_value(wire).unwrap_or_default())
}

/// An event's wire form from its payload: a schema version we do not know, or a field missing or of the wrong
/// type, is malformed (named with the stream and the event id).
fn decode_wire<T: serde::de::DeserializeOwned>(
    stream: &str,
    event: &Delivered,
) -> Result<T, Malformed> {
    check_schema(event)?;
    serde_json::from_value(event.payload.clone())
        .map_err(|e| Malformed(format!("{stream} {}: {e}", event.event_id)))
}

/// `person.registered`, published by identity when a person registers: links the ID number's blind index to the
/// person in every service that keys facts by it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonRegistered {
    pub person_id: Uuid,
    /// The ID number's blind index (32 bytes, HMAC-SHA256 under the platform's index key), as 64 hex digits.
    #[serde(with = "index_hex")]
    pub id_number_index: Vec<u8>,
    pub home_region: String,
    /// The name as a checkpoint guard may see it (张*); absent in events from before identity carried it.
    #[serde(default)]
    pub masked_name: Option<String>,
    /// The ID number's national blind index (HMAC-SHA256 under the national key, `privacy.national_index_key`), as
    /// 64 hex digits (since 1.2): the key by which other regions' facts about the person reach this platform
    /// through the national hub. Absent where no national key is set, and in older events.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "optional_index_hex"
    )]
    pub national_index: Option<Vec<u8>>,
}

mod optional_index_hex {
    use crate::privacy::{from_hex, to_hex};

    pub fn serialize<S: serde::Serializer>(
        index: &Option<Vec<u8>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match index {
            Some(index) => s.serialize_str(&to_hex(index)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Vec<u8>>, D::Error> {
        let hex: Option<String> = serde::Deserialize::deserialize(d)?;
        hex.map(|hex| {
            from_hex(&hex)
                .filter(|i| i.len() == 32)
                .ok_or_else(|| serde::de::Error::custom("national_index must be 64 hex digits"))
        })
        .transpose()
    }
}

mod index_hex {
    use crate::privacy::{from_hex, to_hex};

    pub fn serialize<S: serde::Serializer>(index: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&to_hex(index))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let hex: String = serde::Deserialize::deserialize(d)?;
        from_hex(&hex)
            .filter(|i| i.len() == 32)
            .ok_or_else(|| serde::de::Error::custom("id_number_index must be 64 hex digits"))
    }
}

/// `declaration.submitted`, published by declaration for each daily health declaration; a second one of the same
/// day replaces the first (`supersedes`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeclarationSubmitted {
    pub declaration_id: Uuid,
    pub person_id: Uuid,
    /// The day in China time.
    pub day: NaiveDate,
    pub current_region: String,
    pub fever: bool,
    #[serde(default)]
    pub symptoms: Vec<String>,
    #[serde(default)]
    pub contact_with_case: bool,
    pub contact_date: Option<NaiveDate>,
    #[serde(default)]
    pub travelled_regions: Vec<String>,
    #[serde(default)]
    pub supersedes: Option<Uuid>,
}

/// `facts.imported`, published by declaration for each committed chunk of an official import and by verification
/// for venue check-ins: row `i` of `facts` belongs to the person whose blind index is `people[i]`. Consumers store
/// the facts idempotently by the same natural keys as the publisher.
#[derive(Debug, Clone, PartialEq)]
pub struct FactsImported {
    /// The official client that sent the facts (`verification` for check-ins).
    pub client_id: String,
    pub batch_id: String,
    /// The last line of the upload this chunk covers (imports only).
    pub through_row: Option<i64>,
    /// Blind indexes, 32 bytes each, one per row of `facts`.
    pub people: Vec<Vec<u8>>,
    pub facts: ImportedFacts,
    /// An official's audited correction of facts already stored (since 1.1): consumers replace what they hold under
    /// the same natural keys. Without it a fact already stored is kept as it is, so a row sent again in another
    /// batch never changes a fact unseen.
    pub correction: bool,
}

/// The rows of one kind of official fact.
#[derive(Debug, Clone, PartialEq)]
pub enum ImportedFacts {
    NatResults(Vec<NatResultFact>),
    Cases(Vec<CaseFact>),
    Visits(Vec<VisitFact>),
}

impl ImportedFacts {
    /// The kind's name on the wire and in the import routes (`/v1/imports/{kind}`).
    pub fn kind(&self) -> &'static str {
        match self {
            ImportedFacts::NatResults(_) => "nat-results",
            ImportedFacts::Cases(_) => "cases",
            ImportedFacts::Visits(_) => "visits",
        }
    }

    pub fn len(&self) -> usize {
        match self {
            ImportedFacts::NatResults(rows) => rows.len(),
            ImportedFacts::Cases(rows) => rows.len(),
            ImportedFacts::Visits(rows) => rows.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn to_wire(&self) -> Vec<serde_json::Value> {
        fn rows<T: Serialize>(rows: &[T]) -> Vec<serde_json::Value> {
            rows.iter()
                .map(|r| serde_json::to_value(r).unwrap_or_default())
                .collect()
        }
        match self {
            ImportedFacts::NatResults(r) => rows(r),
            ImportedFacts::Cases(r) => rows(r),
            ImportedFacts::Visits(r) => rows(r),
        }
    }

    fn from_wire(kind: &str, facts: Vec<serde_json::Value>) -> Result<Self, String> {
        fn rows<T: serde::de::DeserializeOwned>(
            facts: Vec<serde_json::Value>,
        ) -> Result<Vec<T>, String> {
            serde_json::from_value(serde_json::Value::Array(facts))
                .map_err(|e| format!("facts: {e}"))
        }
        Ok(match kind {
            "nat-results" => ImportedFacts::NatResults(rows(facts)?),
            "cases" => ImportedFacts::Cases(rows(facts)?),
            "visits" => ImportedFacts::Visits(rows(facts)?),
            other => return Err(format!("unknown fact kind {other}")),
        })
    }
}

/// A nucleic-acid test result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NatResultFact {
    pub sample_time: DateTime<Utc>,
    pub positive: bool,
    pub lab: String,
}

/// An entry of a case list (`confirmed`, `asymptomatic`, `close_contact`, …) from `since`, until `until`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseFact {
    pub status: String,
    pub since: NaiveDate,
    pub until: Option<NaiveDate>,
    /// The region that reported it (since 1.2; absent in older events and for facts imported before regions were
    /// kept): a fact passed on by the national hub names the region it came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

/// A stay in a region: from a carrier's trajectory, a declaration, or a venue check-in (`source`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VisitFact {
    pub region: String,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub source: String,
}

#[derive(Serialize, Deserialize)]
struct FactsImportedWire {
    kind: String,
    client_id: String,
    batch_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    through_row: Option<i64>,
    /// Redundant with `people`, kept for readers of the stream.
    #[serde(default)]
    people_count: usize,
    /// The 32-byte indexes concatenated, in one base64 string: compact for a thousand rows.
    people: String,
    facts: Vec<serde_json::Value>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    correction: bool,
}

impl FactsImported {
    pub const STREAM: &'static str = "facts.imported";

    pub fn encode(&self) -> serde_json::Value {
        encode_wire(&FactsImportedWire {
            kind: self.facts.kind().into(),
            client_id: self.client_id.clone(),
            batch_id: self.batch_id.clone(),
            through_row: self.through_row,
            people_count: self.people.len(),
            people: STANDARD.encode(self.people.concat()),
            facts: self.facts.to_wire(),
            correction: self.correction,
        })
    }

    /// Every shape error (a field missing or of the wrong type, indexes that are not 32 bytes, rows and people
    /// of different lengths, an unknown kind) is [`Malformed`]: retrying cannot fix it.
    pub fn decode(event: &Delivered) -> Result<Self, Malformed> {
        let wire: FactsImportedWire = decode_wire(Self::STREAM, event)?;
        let bad = |what: String| Malformed(format!("{} {}: {what}", Self::STREAM, event.event_id));
        let people = STANDARD
            .decode(&wire.people)
            .map_err(|_| bad("people is not base64".into()))?;
        if people.len() % 32 != 0 {
            return Err(bad("people is not a list of 32-byte indexes".into()));
        }
        let people: Vec<Vec<u8>> = people.chunks(32).map(<[u8]>::to_vec).collect();
        let facts = ImportedFacts::from_wire(&wire.kind, wire.facts).map_err(bad)?;
        if facts.len() != people.len() {
            return Err(bad("facts and people differ in length".into()));
        }
        Ok(Self {
            client_id: wire.client_id,
            batch_id: wire.batch_id,
            through_row: wire.through_row,
            people,
            facts,
            correction: wire.correction,
        })
    }
}

/// `status.changed`, published by scoring with every recolouring that changed colours: whose status moved to which
/// version. Every rendering replica follows it to drop the codes it keeps in memory for those people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusChanged {
    pub changes: Vec<StatusChange>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusChange {
    pub person_id: Uuid,
    pub version: i64,
    pub colour: hc_domain::Colour,
}

/// `auth.revoked`, published by identity when an API client is revoked or a citizen's sign-ins are (a refresh token
/// presented twice): every access token of `subject` issued before `not_before` (Unix seconds) is refused by every
/// service from the moment it hears of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthRevoked {
    /// A person id or an API client id: the token's `sub`.
    pub subject: String,
    pub not_before: i64,
}

impl AuthRevoked {
    /// Every token of `subject` issued up to now. A token's `iat` is in whole seconds, so the cut is the next
    /// second: a token issued earlier in this one is refused too (and a new one issued in it as well).
    pub fn from_now(subject: impl ToString) -> Self {
        Self {
            subject: subject.to_string(),
            not_before: chrono::Utc::now().timestamp() + 1,
        }
    }
}

/// `region.risk_changed`, published by scoring when a health commission sets a region's risk level (for outside
/// subscribers; scoring recolours the region itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionRiskChanged {
    pub region: String,
    /// `low`, `medium` or `high`.
    pub level: String,
    pub effective_from: DateTime<Utc>,
}

/// The events whose wire form is the struct itself: each gets its stream name and one encoder and decoder.
macro_rules! plain_events {
    ($($event:ty => $stream:literal),* $(,)?) => {$(
        impl $event {
            pub const STREAM: &'static str = $stream;

            pub fn encode(&self) -> serde_json::Value {
                encode_wire(self)
            }

            pub fn decode(event: &Delivered) -> Result<Self, Malformed> {
                decode_wire(Self::STREAM, event)
            }
        }
    )*};
}

plain_events!(
    PersonRegistered => "person.registered",
    DeclarationSubmitted => "declaration.submitted",
    StatusChanged => "status.changed",
    AuthRevoked => "auth.revoked",
    RegionRiskChanged => "region.risk_changed",
);

#[cfg(test)]
mod tests {
    use super::*;

    fn delivered(payload: serde_json::Value) -> Delivered {
        Delivered {
            event_id: "identity:1".into(),
            payload,
            traceparent: None,
        }
    }

    #[test]
    fn person_registered_decodes_what_it_encodes_and_refuses_a_bad_index() {
        let event = PersonRegistered {
            person_id: Uuid::new_v4(),
            id_number_index: vec![7; 32],
            home_region: "440100".into(),
            masked_name: Some("张*".into()),
            national_index: None,
        };
        assert_eq!(
            PersonRegistered::decode(&delivered(event.encode())).expect("decodes"),
            event
        );
        let mut short = event.encode();
        short["id_number_index"] = "abcd".into();
        assert!(PersonRegistered::decode(&delivered(short)).is_err());
        let mut missing = event.encode();
        missing.as_object_mut().expect("object").remove("person_id");
        assert!(PersonRegistered::decode(&delivered(missing)).is_err());
    }

    fn imported(facts: ImportedFacts) -> FactsImported {
        FactsImported {
            client_id: "lab-1".into(),
            batch_id: "b-1".into(),
            through_row: Some(2),
            people: vec![vec![1; 32], vec![2; 32]],
            facts,
            correction: false,
        }
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().expect("time")
    }

    #[test]
    fn facts_imported_of_every_kind_decodes_what_it_encodes() {
        let day = NaiveDate::from_ymd_opt(2022, 1, 4).expect("day");
        for facts in [
            ImportedFacts::NatResults(vec![
                NatResultFact {
                    sample_time: at("2022-01-04T00:30:00Z"),
                    positive: false,
                    lab: "lab-1".into(),
                };
                2
            ]),
            ImportedFacts::Cases(vec![
                CaseFact {
                    status: "confirmed".into(),
                    since: day,
                    until: None,
                    region: None,
                },
                CaseFact {
                    status: "close_contact".into(),
                    since: day,
                    until: Some(day),
                    region: None,
                },
            ]),
            ImportedFacts::Visits(vec![
                VisitFact {
                    region: "610113".into(),
                    first_seen: at("2022-01-03T10:00:00Z"),
                    last_seen: at("2022-01-03T11:00:00Z"),
                    source: "carrier".into(),
                };
                2
            ]),
        ] {
            let mut event = imported(facts);
            assert_eq!(
                FactsImported::decode(&delivered(event.encode())).expect("decodes"),
                event
            );
            assert!(
                event.encode().get("correction").is_none(),
                "1.0 readers see nothing new"
            );
            event.correction = true;
            assert_eq!(
                FactsImported::decode(&delivered(event.encode())).expect("decodes"),
                event
            );
        }
    }

    #[test]
    fn every_shape_error_of_facts_imported_is_malformed() {
        let good = imported(ImportedFacts::Cases(vec![
            CaseFact {
                status: "confirmed".into(),
                since: NaiveDate::from_ymd_opt(2022, 1, 4).expect("day"),
                until: None,
                region: None,
            };
            2
        ]))
        .encode();
        let broken: [(&str, serde_json::Value); 6] = [
            ("people", "not base64!".into()),
            ("people", STANDARD.encode([7u8; 33]).into()),
            ("people", STANDARD.encode([7u8; 32]).into()),
            (
                "facts",
                serde_json::json!([{"status": "confirmed"}, {"status": 1}]),
            ),
            ("kind", "vaccinations".into()),
            ("batch_id", serde_json::Value::Null),
        ];
        for (field, value) in broken {
            let mut payload = good.clone();
            payload[field] = value;
            assert!(
                FactsImported::decode(&delivered(payload)).is_err(),
                "{field} broken must not decode"
            );
        }
    }

    #[test]
    fn an_event_from_before_schema_versions_and_people_count_is_still_understood() {
        let mut payload = imported(ImportedFacts::Visits(Vec::new())).encode();
        payload["people"] = "".into();
        payload
            .as_object_mut()
            .expect("object")
            .remove("people_count");
        payload
            .as_object_mut()
            .expect("object")
            .remove("through_row");
        payload
            .as_object_mut()
            .expect("object")
            .remove(SCHEMA_FIELD);
        let event = FactsImported::decode(&delivered(payload)).expect("decodes");
        assert!(event.people.is_empty() && event.through_row.is_none());
    }

    fn arbitrary_json() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            ".{0,40}".prop_map(serde_json::Value::from),
            Just(serde_json::Value::from("nat-results")),
            Just(serde_json::Value::from("cases")),
            Just(serde_json::Value::from(STANDARD.encode([3u8; 32]))),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            let keys = prop_oneof![
                Just("kind".to_owned()),
                Just("people".to_owned()),
                Just("facts".to_owned()),
                Just("client_id".to_owned()),
                Just("batch_id".to_owned()),
                Just("person_id".to_owned()),
                Just("id_number_index".to_owned()),
                Just("home_region".to_owned()),
                "[a-z_]{1,12}",
            ];
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
                proptest::collection::btree_map(keys, inner, 0..8)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    #[test]
    fn declaration_submitted_decodes_what_it_encodes_and_refuses_a_bad_day() {
        let event = DeclarationSubmitted {
            declaration_id: Uuid::new_v4(),
            person_id: Uuid::new_v4(),
            day: NaiveDate::from_ymd_opt(2022, 1, 4).expect("day"),
            current_region: "610113".into(),
            fever: true,
            symptoms: vec!["cough".into()],
            contact_with_case: false,
            contact_date: None,
            travelled_regions: vec!["440106".into()],
            supersedes: None,
        };
        assert_eq!(
            DeclarationSubmitted::decode(&delivered(event.encode())).expect("decodes"),
            event
        );
        let mut bad = event.encode();
        bad["day"] = "yesterday".into();
        assert!(DeclarationSubmitted::decode(&delivered(bad)).is_err());
    }

    #[test]
    fn status_changed_and_region_risk_changed_decode_what_they_encode() {
        let changed = StatusChanged {
            changes: vec![StatusChange {
                person_id: Uuid::new_v4(),
                version: 7,
                colour: hc_domain::Colour::Red,
            }],
        };
        assert_eq!(
            StatusChanged::decode(&delivered(changed.encode())).expect("decodes"),
            changed
        );
        let mut bad = changed.encode();
        bad["changes"][0]["colour"] = "purple".into();
        assert!(StatusChanged::decode(&delivered(bad)).is_err());
        let risk = RegionRiskChanged {
            region: "610113".into(),
            level: "high".into(),
            effective_from: at("2021-12-20T00:00:00Z"),
        };
        assert_eq!(
            RegionRiskChanged::decode(&delivered(risk.encode())).expect("decodes"),
            risk
        );
    }

    #[test]
    fn a_newer_minor_version_is_read_for_what_it_knows_and_another_major_is_malformed() {
        let event = PersonRegistered {
            person_id: Uuid::new_v4(),
            id_number_index: vec![7; 32],
            home_region: "440100".into(),
            masked_name: None,
            national_index: None,
        };
        let mut newer = event.encode();
        assert_eq!(newer[SCHEMA_FIELD], SCHEMA_VERSION);
        newer[SCHEMA_FIELD] = "1.7".into();
        newer["passport_country"] = "CN".into();
        assert_eq!(
            PersonRegistered::decode(&delivered(newer.clone())).expect("1.7"),
            event
        );
        newer[SCHEMA_FIELD] = "2.0".into();
        let err = PersonRegistered::decode(&delivered(newer)).expect_err("2.0");
        assert!(err.0.contains("schema version"), "{err}");
    }

    proptest::proptest! {
        #[test]
        fn no_payload_makes_a_decoder_panic(payload in arbitrary_json()) {
            let event = delivered(payload);
            let _ = FactsImported::decode(&event);
            let _ = PersonRegistered::decode(&event);
            let _ = DeclarationSubmitted::decode(&event);
            let _ = StatusChanged::decode(&event);
            let _ = RegionRiskChanged::decode(&event);
        }
    }
}
