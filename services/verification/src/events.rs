//! What verification learns from other services' events: who is registered (the blind index for the ID-card path
//! and check-ins, the masked name for the guard), and who is a case (the co-traveller check). Idempotent: the same
//! event twice stores nothing new.

use deadpool_postgres::Pool;
use hc_domain::CaseStatus;
use hc_platform::events::{FactsImported, ImportedFacts, PersonRegistered};
use hc_platform::streams::Delivered;

pub async fn people_registered(db: Pool, events: Vec<Delivered>) -> anyhow::Result<()> {
    let mut decoded =
        (events.iter().map(PersonRegistered::decode)).collect::<Result<Vec<_>, _>>()?;
    // The last announcement of a person in the batch wins (one row may be changed once per statement).
    let mut seen = std::collections::HashSet::new();
    decoded.reverse();
    decoded.retain(|e| seen.insert(e.person_id));
    let people: Vec<_> = decoded.iter().map(|e| e.person_id).collect();
    let indexes: Vec<_> = decoded.iter().map(|e| &e.id_number_index).collect();
    // Registrations announced before identity carried it have none: the guard is told the name is unknown.
    let masked: Vec<_> = decoded.iter().map(|e| e.masked_name.as_deref()).collect();
    db.get()
        .await?
        .execute(
            // A person announced again (moved to the holder's phone) keeps the link and takes the new masked name.
            "INSERT INTO persons (person_id, id_index, masked_name)
             SELECT * FROM unnest($1::uuid[], $2::bytea[], $3::text[])
             ON CONFLICT (person_id) DO UPDATE SET masked_name = coalesce(excluded.masked_name, persons.masked_name)",
            &[&people, &indexes, &masked],
        )
        .await?;
    Ok(())
}

/// Only case lists matter here; other kinds of facts are acknowledged and skipped (once they decode: a malformed
/// event is dead-lettered by every consumer alike).
pub async fn facts_imported(db: Pool, event: Delivered) -> anyhow::Result<()> {
    let FactsImported { people, facts, .. } = FactsImported::decode(&event)?;
    let ImportedFacts::Cases(rows) = facts else {
        return Ok(());
    };
    let mut index = Vec::new();
    let mut since = Vec::new();
    for (person, row) in people.into_iter().zip(rows) {
        if row
            .status
            .parse::<CaseStatus>()
            .is_ok_and(CaseStatus::is_infectious)
        {
            index.push(person);
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
