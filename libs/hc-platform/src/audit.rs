//! The audit log every service that reads personal data or acts on a person keeps in its own schema
//! (`audit_log (id, at, actor, action, subject, reason, outcome)`, created by its migrations): written before the
//! answer goes out, in the caller's transaction when there is one.

use deadpool_postgres::GenericClient;
use uuid::Uuid;

pub struct Entry<'a> {
    pub actor: &'a str,
    pub action: &'a str,
    pub subject: Option<Uuid>,
    pub reason: Option<&'a str>,
    pub outcome: &'a str,
}

impl Entry<'_> {
    pub async fn record(&self, client: &impl GenericClient) -> Result<(), tokio_postgres::Error> {
        client
            .execute(
                "INSERT INTO audit_log (actor, action, subject, reason, outcome) VALUES ($1, $2, $3, $4, $5)",
                &[&self.actor, &self.action, &self.subject, &self.reason, &self.outcome],
            )
            .await?;
        Ok(())
    }
}
