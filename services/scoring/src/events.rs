//! The consumers: store what an event says, then recolour whoever it touches, in that order (a crash in between
//! leaves the event pending, and the redelivery recolours).

use std::sync::Arc;

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

/// Applies `events` of one kind in one transaction, then recolours everyone they touch at once.
pub async fn handle(
    recolourer: Arc<Recolourer>,
    kind: Fact,
    events: Vec<Delivered>,
) -> anyhow::Result<()> {
    let mut client = recolourer.db.get().await?;
    let tx = client.transaction().await?;
    let touched = match kind {
        Fact::PersonRegistered => projection::people_registered(&tx, &events).await?,
        Fact::DeclarationSubmitted | Fact::FactsImported => {
            let mut touched = Vec::new();
            for event in &events {
                touched.extend(match kind {
                    Fact::DeclarationSubmitted => {
                        projection::declaration_submitted(&tx, event).await?
                    }
                    _ => projection::facts_imported(&tx, event).await?,
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
    tracing::debug!(
        events = events.len(),
        evaluated = summary.evaluated,
        changed = summary.changed,
        "events applied"
    );
    Ok(())
}
