//! `staff`: the people an employer listed for its return-to-work check, by blind index and label, and whether each
//! has accepted the employer.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use hc_domain::Colour;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// The employer listing people.
pub struct Employer<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub region: &'a str,
}

/// Serializes the changes to one employer's list until the transaction ends: a replace carries each person's
/// acceptance over from the rows it read, so a withdrawal committed between that read and the rewrite would be lost
/// (and the employer shown a colour without consent). Both take this lock first.
pub async fn lock_employer(
    client: &impl GenericClient,
    employer: &str,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "SELECT pg_advisory_xact_lock(hashtextextended('staff:' || $1, 0))",
            &[&employer],
        )
        .await
        .map(drop)
}

/// Replaces the employer's list; returns how many people it holds. A person still on the list keeps their
/// acceptance; a person taken off it loses it. Run in a transaction.
pub async fn replace(
    client: &impl GenericClient,
    employer: &Employer<'_>,
    indexes: &[Vec<u8>],
    labels: &[String],
) -> Result<u64, tokio_postgres::Error> {
    let accepted: std::collections::HashMap<Vec<u8>, DateTime<Utc>> = client
        .query(
            "SELECT id_index, accepted_at FROM staff WHERE employer_id = $1 AND accepted_at IS NOT NULL",
            &[&employer.id],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let accepted_at: Vec<Option<DateTime<Utc>>> =
        indexes.iter().map(|i| accepted.get(i).copied()).collect();
    client
        .execute("DELETE FROM staff WHERE employer_id = $1", &[&employer.id])
        .await?;
    client
        .execute(
            "INSERT INTO staff (employer_id, employer_name, employer_region, id_index, label, accepted_at)
             SELECT $1, $2, $3, * FROM unnest($4::bytea[], $5::text[], $6::timestamptz[])
             ON CONFLICT DO NOTHING",
            &[&employer.id, &employer.name, &employer.region, &indexes, &labels, &accepted_at],
        )
        .await
}

/// One row of the employer's list as the employer sees it.
pub struct Listed {
    pub label: String,
    /// The person behind the label, once they have registered and accepted the employer.
    pub shown: Option<(Uuid, Option<Colour>)>,
    pub accepted: bool,
}

/// A page of the employer's list after the label `after`, in label order. A person's colour is read only if they
/// accepted the employer.
pub async fn colours(
    client: &impl GenericClient,
    employer: &str,
    after: &str,
    limit: i64,
) -> Result<Vec<Listed>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT st.label, st.accepted_at IS NOT NULL, sub.person_id, s.colour FROM staff st
             LEFT JOIN subjects sub ON sub.id_index = st.id_index AND st.accepted_at IS NOT NULL
             LEFT JOIN status s ON s.person_id = sub.person_id
             WHERE st.employer_id = $1 AND st.label > $2 ORDER BY st.label LIMIT $3",
            &[&employer, &after, &limit],
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let colour = r.get::<_, Option<String>>(3).and_then(|c| c.parse().ok());
            Listed {
                label: r.get(0),
                accepted: r.get(1),
                shown: r.get::<_, Option<Uuid>>(2).map(|p| (p, colour)),
            }
        })
        .collect())
}

/// An employer that listed a person, as the person sees it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MyEmployer {
    pub employer_id: String,
    pub employer_name: String,
    pub employer_region: Option<String>,
    /// What the employer calls the person.
    pub label: String,
    pub accepted: bool,
}

/// The employers that listed the person behind `index`.
pub async fn employers_of(
    client: &impl GenericClient,
    index: &[u8],
) -> Result<Vec<MyEmployer>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT employer_id, employer_name, employer_region, label, accepted_at IS NOT NULL FROM staff
             WHERE id_index = $1 ORDER BY employer_name, employer_id",
            &[&index],
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| MyEmployer {
            employer_id: r.get(0),
            employer_name: r.get(1),
            employer_region: r.get::<_, Option<String>>(2).map(|r| r.trim().to_owned()),
            label: r.get(3),
            accepted: r.get(4),
        })
        .collect())
}

/// The person accepts (or withdraws from) an employer's list; false if that employer did not list them.
pub async fn set_accepted(
    client: &impl GenericClient,
    employer: &str,
    index: &[u8],
    accepted: bool,
) -> Result<bool, tokio_postgres::Error> {
    let n = client
        .execute(
            "UPDATE staff SET accepted_at = CASE WHEN $3 THEN coalesce(accepted_at, now()) END
             WHERE employer_id = $1 AND id_index = $2",
            &[&employer, &index, &accepted],
        )
        .await?;
    Ok(n == 1)
}
