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
            Fact::PersonRegistered => "person.registered",
            Fact::DeclarationSubmitted => "declaration.submitted",
            Fact::FactsImported => "facts.imported",
        }
    }
}

pub async fn handle(
    recolourer: Arc<Recolourer>,
    kind: Fact,
    event: Delivered,
) -> anyhow::Result<()> {
    let client = recolourer.db.get().await?;
    let touched = match kind {
        Fact::PersonRegistered => projection::person_registered(&client, &event).await?,
        Fact::DeclarationSubmitted => projection::declaration_submitted(&client, &event).await?,
        Fact::FactsImported => projection::facts_imported(&client, &event).await?,
    };
    drop(client);
    let summary = recolourer.recolour(touched).await?;
    tracing::debug!(event = %event.event_id, evaluated = summary.evaluated, changed = summary.changed, "event applied");
    Ok(())
}
