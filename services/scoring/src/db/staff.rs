//! `staff`: the people an employer listed for its return-to-work check, by blind index and label.

use deadpool_postgres::GenericClient;
use hc_domain::Colour;

/// Replaces the employer's list; returns how many people it holds. Run in a transaction.
pub async fn replace(
    client: &impl GenericClient,
    employer: &str,
    indexes: &[Vec<u8>],
    labels: &[String],
) -> Result<u64, tokio_postgres::Error> {
    client
        .execute("DELETE FROM staff WHERE employer_id = $1", &[&employer])
        .await?;
    client
        .execute(
            "INSERT INTO staff (employer_id, id_index, label) SELECT $1, * FROM unnest($2::bytea[], $3::text[])
             ON CONFLICT DO NOTHING",
            &[&employer, &indexes, &labels],
        )
        .await
}

/// A page of the employer's list after the label `after`, in label order: each label and the person's colour
/// (`None` while they have not registered).
pub async fn colours(
    client: &impl GenericClient,
    employer: &str,
    after: &str,
    limit: i64,
) -> Result<Vec<(String, Option<Colour>)>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT st.label, s.colour FROM staff st
             LEFT JOIN subjects sub ON sub.id_index = st.id_index
             LEFT JOIN status s ON s.person_id = sub.person_id
             WHERE st.employer_id = $1 AND st.label > $2 ORDER BY st.label LIMIT $3",
            &[&employer, &after, &limit],
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let colour = r.get::<_, Option<String>>(1).and_then(|c| c.parse().ok());
            (r.get(0), colour)
        })
        .collect())
}
