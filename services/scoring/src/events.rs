//! The consumers: store what an event says, then recolour whoever it touches, in that order (a crash in between
//! leaves the event pending, and the redelivery recolours).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use hc_platform::streams::Delivered;

use crate::projection;
use crate::recolour::Recolourer;

#[derive(Clone, Copy)]
pub enum Fact {
    PersonRegistered,
    DeclarationSubmitted,
    FactsImported,
}

impl Fact {
    pub fn stream(self) -> &'static str {
        match self {
            Fact::PersonRegistered => hc_platform::events::PersonRegistered::STREAM,
            Fact::DeclarationSubmitted => hc_platform::events::DeclarationSubmitted::STREAM,
            Fact::FactsImported => hc_platform::events::FactsImported::STREAM,
        }
    }
}

/// Applies `events` of one kind in one transaction, then recolours everyone they touch at once; events handled to
/// the end before (a replay after a Redis restart) are skipped.
pub async fn handle(
    recolourer: Arc<Recolourer>,
    kind: Fact,
    events: Vec<Delivered>,
) -> anyhow::Result<()> {
    let mut client = recolourer.db.get().await?;
    let ids: Vec<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
    let handled: std::collections::HashSet<String> = client
        .query(
            "SELECT event_id FROM handled_events WHERE event_id = ANY($1)",
            &[&ids],
        )
        .await?
        .into_iter()
        .map(|r| r.get(0))
        .collect();
    let events: Vec<Delivered> = events
        .into_iter()
        .filter(|e| !handled.contains(&e.event_id))
        .collect();
    if !handled.is_empty() {
        metrics::counter!("scoring_events_already_handled_total").increment(handled.len() as u64);
    }
    if events.is_empty() {
        return Ok(());
    }
    let tx = client.transaction().await?;
    let mut past_days = false;
    let touched = match kind {
        Fact::PersonRegistered => projection::people_registered(&tx, &events).await?,
        Fact::DeclarationSubmitted | Fact::FactsImported => {
            let mut touched = Vec::new();
            for event in &events {
                touched.extend(match kind {
                    Fact::DeclarationSubmitted => {
                        projection::declaration_submitted(&tx, event).await?
                    }
                    _ => {
                        let (people, dated_back) = projection::facts_imported(&tx, event).await?;
                        past_days |= dated_back;
                        people
                    }
                });
            }
            touched.sort();
            touched.dedup();
            projection::facts_changed(&tx, &touched).await?;
            touched
        }
    };
    tx.commit().await?;
    drop(client);
    let summary = recolourer.recolour(touched).await?;
    // After the recolouring: the county map's indices read the colours.
    if matches!(kind, Fact::FactsImported) {
        if past_days {
            recolourer.past_days_changed.store(true, Ordering::Relaxed);
        }
        recolourer.facts_arrived.notify_one();
    }
    // Only now, with everyone recoloured: an event interrupted before this line is handled again whole.
    let ids: Vec<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
    recolourer
        .db
        .get()
        .await?
        .execute(
            "INSERT INTO handled_events (event_id) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING",
            &[&ids],
        )
        .await?;
    tracing::debug!(
        events = events.len(),
        evaluated = summary.evaluated,
        changed = summary.changed,
        "events applied"
    );
    Ok(())
}
