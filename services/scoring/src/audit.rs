//! The audit log: every read of a person's status by an official and every override, written before the answer.

use deadpool_postgres::GenericClient;
use uuid::Uuid;

pub struct Entry<'a> {
    pub actor: &'a str,
    pub action: &'a str,
    pub subject: Option<Uuid>,
    pub reason: Option<&'a str>,
    pub outcome: &'a str,
}

pub async fn record(
    client: &impl GenericClient,
    e: &Entry<'_>,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "INSERT INTO audit_log (actor, action, subject, reason, outcome) VALUES ($1, $2, $3, $4, $5)",
            &[&e.actor, &e.action, &e.subject, &e.reason, &e.outcome],
        )
        .await?;
    Ok(())
}
