//! Typed events between services: one struct per event, encoded by its publisher and decoded by every consumer
//! through the same code, so that the two cannot drift apart. A payload that does not decode is [`Malformed`]
//! (the consumer dead-letters it); only a failure of the consumer's own storage is retried.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::privacy::{from_hex, to_hex};
use crate::streams::{Delivered, Malformed};

/// `person.registered`, published by identity when a person registers: links the ID number's blind index to the
/// person in every service that keys facts by it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonRegistered {
    pub person_id: Uuid,
    /// The ID number's blind index (32 bytes, HMAC-SHA256 under the platform's index key).
    pub id_number_index: Vec<u8>,
    pub home_region: String,
    /// The name as a checkpoint guard may see it (张*); absent in events from before identity carried it.
    pub masked_name: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct PersonRegisteredWire {
    person_id: Uuid,
    id_number_index: String,
    home_region: String,
    #[serde(default)]
    masked_name: Option<String>,
}

impl PersonRegistered {
    pub const STREAM: &'static str = "person.registered";

    pub fn encode(&self) -> serde_json::Value {
        serde_json::to_value(PersonRegisteredWire {
            person_id: self.person_id,
            id_number_index: to_hex(&self.id_number_index),
            home_region: self.home_region.clone(),
            masked_name: self.masked_name.clone(),
        })
        .unwrap_or_default()
    }

    pub fn decode(event: &Delivered) -> Result<Self, Malformed> {
        let wire: PersonRegisteredWire = serde_json::from_value(event.payload.clone())
            .map_err(|e| Malformed(format!("person.registered {}: {e}", event.event_id)))?;
        let id_number_index = from_hex(&wire.id_number_index)
            .filter(|i| i.len() == 32)
            .ok_or_else(|| Malformed("id_number_index must be 64 hex digits".into()))?;
        Ok(Self {
            person_id: wire.person_id,
            id_number_index,
            home_region: wire.home_region,
            masked_name: wire.masked_name,
        })
    }
}

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
}
