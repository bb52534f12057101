use deadpool_postgres::GenericClient;
use hc_domain::PersonId;

pub struct AuditEntry<'a> {
    pub actor: &'a str,
    pub action: &'a str,
    pub subject: Option<PersonId>,
    pub reason: &'a str,
    pub outcome: &'a str,
}

pub async fn record(
    client: &impl GenericClient,
    e: &AuditEntry<'_>,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "INSERT INTO audit_log (actor, action, subject, reason, outcome) VALUES ($1, $2, $3, $4, $5)",
            &[&e.actor, &e.action, &e.subject.map(|p| p.0), &e.reason, &e.outcome],
        )
        .await?;
    Ok(())
}
