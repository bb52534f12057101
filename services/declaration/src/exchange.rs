//! This platform's side of the national fact exchange (docs/interop.md): it tells the hub who is registered here,
//! passes on the case-list entries and positive tests of people who are not, and imports the facts other regions
//! report about its own residents, as facts with their source region. Everything is keyed by the national blind
//! index; the ID number never leaves.

use std::time::Duration;

use anyhow::Context;
use base64::Engine;
use deadpool_postgres::{GenericClient, Pool};
use hc_platform::events::{FactsImported, ImportedFacts};
use hc_platform::exchange::{Envelope, Exchanged, Fact, Fetched, MAX_ENTRIES, Message};
use hc_platform::privacy::{from_hex, to_hex};
use hc_token::{SignedMessage, SigningKey};
use secrecy::ExposeSecret;
use tokio_util::sync::CancellationToken;

use crate::imports::facts::{self, Columns, Kind};
use crate::settings::DeclarationSettings;

/// Where and as whom this platform talks to the hub.
pub struct Hub {
    url: String,
    region: String,
    key: SigningKey,
    http: reqwest::Client,
}

impl Hub {
    /// None where `declaration.hub_url` is empty.
    pub fn from_settings(
        s: &DeclarationSettings,
        tls: &hc_platform::tls::Tls,
    ) -> anyhow::Result<Option<Self>> {
        if s.hub_url.trim().is_empty() {
            return Ok(None);
        }
        tls.check_https("declaration.hub_url", &s.hub_url)?;
        let (kid, seed) = s
            .exchange_key
            .expose_secret()
            .trim()
            .split_once(':')
            .context("declaration.exchange_key is not kid:base64-seed")?;
        let seed = base64::engine::general_purpose::STANDARD
            .decode(seed)
            .context("declaration.exchange_key: the seed is not base64")?;
        Ok(Some(Self {
            url: s.hub_url.trim_end_matches('/').to_owned(),
            region: s.region.clone(),
            key: SigningKey::from_seed(&s.region, kid, &seed)
                .context("declaration.exchange_key")?,
            http: tls.http_client().timeout(Duration::from_secs(10)).build()?,
        }))
    }

    async fn send(&self, message: Message) -> Result<reqwest::Response, SendError> {
        let envelope = Envelope {
            region: self.region.clone(),
            at: chrono::Utc::now().timestamp(),
            message,
        };
        let signed =
            SignedMessage::sign(&envelope, &self.key).map_err(|e| SendError::Failed(e.into()))?;
        let response = self
            .http
            .post(format!(
                "{}/v1/hub/regions/{}/exchange",
                self.url, self.region
            ))
            .json(&signed)
            .send()
            .await
            .map_err(|e| SendError::Failed(e.into()))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response.text().await.unwrap_or_default();
        // A refusal that sending again cannot change; a timeout, a rate limit or the hub's own failure can.
        if status.is_client_error()
            && status != reqwest::StatusCode::REQUEST_TIMEOUT
            && status != reqwest::StatusCode::TOO_MANY_REQUESTS
        {
            Err(SendError::Refused(format!("{status}: {body}")))
        } else {
            Err(SendError::Failed(anyhow::anyhow!(
                "the hub answered {status}: {body}"
            )))
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum SendError {
    #[error("the hub refused the message for good: {0}")]
    Refused(String),
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

/// Queues `entries` for the hub in the caller's transaction, `MAX_ENTRIES` to a message.
async fn queue<T: Clone>(
    client: &impl GenericClient,
    entries: &[T],
    message: impl Fn(Vec<T>) -> Message,
) -> anyhow::Result<()> {
    for chunk in entries.chunks(MAX_ENTRIES) {
        client
            .execute(
                "INSERT INTO hub_outbox (message) VALUES ($1)",
                &[&serde_json::to_value(message(chunk.to_vec()))?],
            )
            .await?;
    }
    Ok(())
}

/// Residents to announce: people registered here with a national index.
pub async fn queue_residents(
    client: &impl GenericClient,
    indexes: &[Vec<u8>],
) -> anyhow::Result<()> {
    let indexes: Vec<String> = indexes.iter().map(|i| to_hex(i)).collect();
    queue(client, &indexes, |indexes| Message::Residents { indexes }).await
}

/// From an import's chunk, in its transaction: the case-list entries and positive tests of people not registered
/// here, for their home regions. A case entry that arose outside this platform's region (`region`) is not ours to
/// report: it stays here.
pub async fn queue_outbound(
    client: &impl GenericClient,
    region: &str,
    kind: Kind,
    cols: &Columns,
) -> anyhow::Result<()> {
    let ours = hc_domain::RegionCode::parse(region)
        .map_err(|e| anyhow::anyhow!("declaration.region: {}", e.reason))?;
    let arose_here = |fact: &Fact| match fact {
        Fact::Cases(case) => case
            .region
            .as_deref()
            .and_then(|r| hc_domain::RegionCode::parse(r).ok())
            .is_some_and(|r| ours.contains(r)),
        Fact::NatResults(nat) => nat.positive,
    };
    let local: Vec<Vec<u8>> = client
        .query(
            "SELECT id_index FROM person_links WHERE id_index = ANY($1)",
            &[&cols.index],
        )
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let facts: Vec<Exchanged> = match cols.event_facts(kind) {
        ImportedFacts::Cases(rows) => rows.into_iter().map(Fact::Cases).collect::<Vec<_>>(),
        ImportedFacts::NatResults(rows) => rows.into_iter().map(Fact::NatResults).collect(),
        ImportedFacts::Visits(_) => return Ok(()),
    }
    .into_iter()
    .zip(&cols.index)
    .zip(&cols.national)
    .filter(|((fact, index), _)| !local.contains(index) && arose_here(fact))
    .filter_map(|((fact, _), national)| {
        national.as_ref().map(|n| Exchanged {
            index: to_hex(n),
            fact,
        })
    })
    .collect();
    queue(client, &facts, |facts| Message::Facts { facts }).await
}

/// Sends what is queued, then fetches and imports the facts for this platform's residents, every `every`, until
/// cancelled.
pub async fn run(hub: Hub, db: Pool, every: Duration, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {
                if let Err(err) = send_queued(&hub, &db).await {
                    tracing::warn!(error = format!("{err:#}"), "sending to the national hub failed; kept for the next try");
                }
                if let Err(err) = fetch_and_import(&hub, &db).await {
                    tracing::warn!(error = format!("{err:#}"), "fetching facts from the national hub failed");
                }
            }
        }
    }
}

async fn send_queued(hub: &Hub, db: &Pool) -> anyhow::Result<()> {
    let mut client = db.get().await?;
    loop {
        let tx = client.transaction().await?;
        // One replica sends a message at a time; the row stays until the hub has answered.
        let Some(row) = tx
            .query_opt(
                "SELECT id, message FROM hub_outbox ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED",
                &[],
            )
            .await?
        else {
            return Ok(());
        };
        let (id, message): (i64, serde_json::Value) = (row.get(0), row.get(1));
        match hub.send(serde_json::from_value(message.clone())?).await {
            Ok(_) => {}
            Err(SendError::Refused(reason)) => {
                metrics::counter!("declaration_hub_messages_refused_total").increment(1);
                tracing::error!(
                    id,
                    reason,
                    "the hub refused a message for good; kept in hub_refused"
                );
                tx.execute(
                    "INSERT INTO hub_refused (id, message, reason) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                    &[&id, &message, &reason],
                )
                .await?;
            }
            Err(SendError::Failed(err)) => return Err(err),
        }
        tx.execute("DELETE FROM hub_outbox WHERE id = $1", &[&id])
            .await?;
        tx.commit().await?;
    }
}

/// Fetches the oldest facts waiting for this platform, acknowledging those stored last time, and stores them, in
/// one transaction with the ids to acknowledge next: a fact is deleted at the hub only after it is stored here.
async fn fetch_and_import(hub: &Hub, db: &Pool) -> anyhow::Result<()> {
    let mut client = db.get().await?;
    loop {
        let tx = client.transaction().await?;
        let ack: Vec<i64> = tx
            .query_one("SELECT pending FROM hub_acks FOR UPDATE", &[])
            .await?
            .get(0);
        let fetched: Fetched = hub
            .send(Message::Fetch { ack, limit: 1000 })
            .await
            .map_err(anyhow::Error::from)?
            .json()
            .await?;
        let delivered: Vec<i64> = fetched.facts.iter().map(|d| d.id).collect();
        let imported = import(&tx, &fetched).await?;
        tx.execute("UPDATE hub_acks SET pending = $1", &[&delivered])
            .await?;
        tx.commit().await?;
        if delivered.is_empty() {
            return Ok(());
        }
        tracing::info!(
            received = delivered.len(),
            imported,
            "facts from other regions imported"
        );
    }
}

/// Stores the delivered facts of people registered here (by kind, as an import's chunk is stored) and announces
/// them to scoring, each case entry with the region that reported it.
async fn import(
    tx: &deadpool_postgres::Transaction<'_>,
    fetched: &Fetched,
) -> anyhow::Result<usize> {
    let national: Vec<Vec<u8>> = fetched
        .facts
        .iter()
        .filter_map(|d| from_hex(&d.index))
        .collect();
    let links: std::collections::HashMap<Vec<u8>, Vec<u8>> = tx
        .query(
            "SELECT national_index, id_index FROM person_links WHERE national_index = ANY($1)",
            &[&national],
        )
        .await?
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    let mut imported = 0;
    for kind in [Kind::Cases, Kind::NatResults] {
        let rows: Vec<(Vec<u8>, &Fact, &str)> = fetched
            .facts
            .iter()
            .filter(|d| {
                matches!(
                    (&d.fact, kind),
                    (Fact::Cases(_), Kind::Cases) | (Fact::NatResults(_), Kind::NatResults)
                )
            })
            .filter(|d| match d.fact.check() {
                Ok(()) => true,
                Err(why) => {
                    tracing::warn!(
                        source = d.source,
                        why,
                        "a delivered fact fails an import's checks; skipped"
                    );
                    false
                }
            })
            .filter_map(|d| {
                let local = links.get(&from_hex(&d.index)?)?;
                Some((local.clone(), &d.fact, d.source.as_str()))
            })
            .collect();
        if rows.is_empty() {
            continue;
        }
        let cols = Columns::delivered(&rows);
        let batch = format!("hub-{}", fetched.facts.first().map_or(0, |d| d.id));
        facts::insert(
            tx,
            kind,
            &cols,
            facts::Sender {
                client_id: "hub",
                batch_id: &batch,
            },
        )
        .await?;
        let event = FactsImported {
            client_id: "hub".into(),
            batch_id: batch,
            through_row: None,
            correction: false,
            people: cols.index.clone(),
            facts: cols.event_facts(kind),
        };
        hc_platform::outbox::enqueue(tx, FactsImported::STREAM, &event.encode()).await?;
        imported += rows.len();
    }
    Ok(imported)
}
