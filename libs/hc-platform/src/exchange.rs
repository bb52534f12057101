//! The messages between a platform and the national hub's fact exchange (docs/interop.md): each is signed by the
//! sending region's exchange key (`hc_token::SignedMessage`). A person is named only by the national blind index of
//! their ID number (`privacy.national_index_key`), never by the number itself.

use serde::{Deserialize, Serialize};

use crate::events::{CaseFact, NatResultFact};

/// What a region sends: its region, when (the hub refuses messages older than [`MAX_AGE_SECONDS`]), and the request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub region: String,
    /// Unix seconds.
    pub at: i64,
    pub message: Message,
}

/// How old (or how far in the future) a message may be when the hub reads it: bounds a replay.
pub const MAX_AGE_SECONDS: i64 = 300;

/// The most entries a message carries.
pub const MAX_ENTRIES: usize = 5000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Message {
    /// "These people are registered here": facts about them reported elsewhere are routed to this region.
    Residents { indexes: Vec<String> },
    /// Facts about people this region does not have, for their home regions. The sender learns nothing back.
    Facts { facts: Vec<Exchanged> },
    /// Acknowledges the deliveries `ack` (stored by the home region since it received them), and asks for the
    /// oldest ones still waiting. Acknowledging exact ids, not a high-water mark: two senders' facts may commit at
    /// the hub out of id order.
    Fetch { ack: Vec<i64>, limit: usize },
}

/// One fact and whom it is about (the national index, 64 hex digits).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Exchanged {
    pub index: String,
    pub fact: Fact,
}

/// The facts that cross regions: case-list entries and test results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Fact {
    Cases(CaseFact),
    NatResults(NatResultFact),
}

/// A fact delivered to its person's home region, with the region that reported it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub id: i64,
    pub index: String,
    pub source: String,
    pub fact: Fact,
}

/// The answer to a [`Message::Fetch`]: the oldest facts still waiting for the region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fetched {
    pub facts: Vec<Delivery>,
}

impl Fact {
    /// The checks an import makes of a row, for a fact from another region: the hub refuses a message with a fact
    /// that fails them, and a home platform skips one.
    pub fn check(&self) -> Result<(), String> {
        match self {
            Fact::Cases(case) => {
                case.status
                    .parse::<hc_domain::CaseStatus>()
                    .map_err(|e| format!("status: {}", e.reason))?;
                if case.until.is_some_and(|until| until < case.since) {
                    return Err("until: is before since".into());
                }
                Ok(())
            }
            Fact::NatResults(nat) => {
                let lab = nat.lab.trim();
                if lab.is_empty() || lab.chars().count() > 100 {
                    return Err("lab: must be 1 to 100 characters".into());
                }
                Ok(())
            }
        }
    }
}
