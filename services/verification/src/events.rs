//! What verification learns from other services' events: who is registered (the blind index for the ID-card path
//! and check-ins, the masked name for the guard), and who is a case (the co-traveller check). Idempotent: the same
//! event twice stores nothing new.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::NaiveDate;
use deadpool_postgres::Pool;
use hc_platform::privacy::from_hex;
use hc_platform::streams::{Delivered, Malformed};
use serde::Deserialize;
use uuid::Uuid;

fn malformed(what: impl std::fmt::Display) -> anyhow::Error {
    Malformed(what.to_string()).into()
}

fn field<'a>(event: &'a Delivered, name: &str) -> anyhow::Result<&'a str> {
    event.payload[name]
        .as_str()
        .ok_or_else(|| malformed(format!("event {} has no {name}", event.event_id)))
}

pub async fn person_registered(db: Pool, event: Delivered) -> anyhow::Result<()> {
    let person: Uuid = field(&event, "person_id")?.parse().map_err(malformed)?;
    let index = from_hex(field(&event, "id_number_index")?)
        .filter(|i| i.len() == 32)
        .ok_or_else(|| malformed("id_number_index must be 64 hex digits"))?;
    // Registrations announced before identity carried it have none: the guard is told the name is unknown.
    let masked = event.payload["masked_name"].as_str();
    db.get()
        .await?
        .execute(
            "INSERT INTO persons (person_id, id_index, masked_name) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            &[&person, &index, &masked],
        )
        .await?;
    Ok(())
}

#[derive(Deserialize)]
struct CaseRow {
    status: String,
    since: NaiveDate,
}

/// Only case lists matter here; other kinds of facts are acknowledged and skipped.
pub async fn facts_imported(db: Pool, event: Delivered) -> anyhow::Result<()> {
    if field(&event, "kind")? != "cases" {
        return Ok(());
    }
    let people = STANDARD
        .decode(field(&event, "people")?)
        .map_err(malformed)?;
    if people.len() % 32 != 0 {
        return Err(malformed("people is not a list of 32-byte indexes"));
    }
    let facts = event.payload["facts"]
        .as_array()
        .ok_or_else(|| malformed("facts is missing"))?;
    if facts.len() * 32 != people.len() {
        return Err(malformed("facts and people differ in length"));
    }
    let mut index = Vec::new();
    let mut since = Vec::new();
    for (person, fact) in people.chunks(32).zip(facts) {
        let row = CaseRow::deserialize(fact).map_err(malformed)?;
        if matches!(row.status.as_str(), "confirmed" | "asymptomatic") {
            index.push(person.to_vec());
            since.push(row.since);
        }
    }
    if !index.is_empty() {
        db.get()
            .await?
            .execute(
                "INSERT INTO cases (id_index, since) SELECT * FROM unnest($1::bytea[], $2::date[]) ON CONFLICT DO NOTHING",
                &[&index, &since],
            )
            .await?;
    }
    Ok(())
}
