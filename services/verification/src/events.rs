//! What verification learns from other services' events: who is registered (the blind index for the ID-card path
//! and check-ins, the masked name for the guard), and who is a case (the co-traveller check). Idempotent: the same
//! event twice stores nothing new.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::NaiveDate;
use deadpool_postgres::Pool;
use hc_platform::events::PersonRegistered;
use hc_platform::streams::{Delivered, Malformed};
use serde::Deserialize;

fn malformed(what: impl std::fmt::Display) -> anyhow::Error {
    Malformed(what.to_string()).into()
}

fn field<'a>(event: &'a Delivered, name: &str) -> anyhow::Result<&'a str> {
    event.payload[name]
        .as_str()
        .ok_or_else(|| malformed(format!("event {} has no {name}", event.event_id)))
}

pub async fn people_registered(db: Pool, events: Vec<Delivered>) -> anyhow::Result<()> {
    let mut people = Vec::with_capacity(events.len());
    let mut indexes = Vec::with_capacity(events.len());
    let mut masked = Vec::with_capacity(events.len());
    for event in &events {
        let e = PersonRegistered::decode(event)?;
        people.push(e.person_id);
        indexes.push(e.id_number_index);
        // Registrations announced before identity carried it have none: the guard is told the name is unknown.
        masked.push(e.masked_name);
    }
    db.get()
        .await?
        .execute(
            "INSERT INTO persons (person_id, id_index, masked_name)
             SELECT * FROM unnest($1::uuid[], $2::bytea[], $3::text[]) ON CONFLICT DO NOTHING",
            &[&people, &indexes, &masked],
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
