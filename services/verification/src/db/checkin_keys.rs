//! `checkin_keys`: the Idempotency-Key of each check-in, claimed in the transaction that records it, so that a repeat
//! of an acknowledged check-in is never recorded twice, whatever Redis remembers.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use uuid::Uuid;

/// How long a check-in's key is remembered (here, and in Redis's fast path).
pub const REMEMBERED_SECONDS: i64 = 86_400;

/// A key to claim: whose, which, and the check-in it would name.
pub struct Claim<'a> {
    pub person: Uuid,
    pub key: &'a str,
    pub checkin: Uuid,
    pub venue: &'a str,
    pub at: DateTime<Utc>,
}

/// Claims the keys (each distinct (person, key) once; the caller drops repeats within a batch) and returns the
/// check-ins whose claim succeeded. A key remembered for less than a day stays with its first check-in; an older one
/// is taken over. The claims are made in (person, key) order, so that two batches claiming the same keys at once
/// wait for each other instead of deadlocking.
pub async fn claim(
    client: &impl GenericClient,
    claims: &[Claim<'_>],
) -> Result<Vec<Uuid>, tokio_postgres::Error> {
    let mut claims: Vec<&Claim<'_>> = claims.iter().collect();
    claims.sort_by(|a, b| (a.person, a.key).cmp(&(b.person, b.key)));
    let person: Vec<_> = claims.iter().map(|c| c.person).collect();
    let key: Vec<_> = claims.iter().map(|c| c.key).collect();
    let checkin: Vec<_> = claims.iter().map(|c| c.checkin).collect();
    let venue: Vec<_> = claims.iter().map(|c| c.venue).collect();
    let at: Vec<_> = claims.iter().map(|c| c.at).collect();
    let rows = client
        .query(
            "INSERT INTO checkin_keys (person_id, key, checkin_id, venue_id, at)
             SELECT * FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::text[], $5::timestamptz[])
             ON CONFLICT (person_id, key) DO UPDATE
                SET checkin_id = EXCLUDED.checkin_id, venue_id = EXCLUDED.venue_id, at = EXCLUDED.at
                WHERE checkin_keys.at < EXCLUDED.at - make_interval(secs => $6)
             RETURNING checkin_id",
            &[
                &person,
                &key,
                &checkin,
                &venue,
                &at,
                &(REMEMBERED_SECONDS as f64),
            ],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// The check-in a person's key names: its id, venue and time. Asked once the claim has said the key was taken, so
/// without an age of its own: the claim's clock decided, and a key is swept only a day after that.
pub async fn first(
    client: &impl GenericClient,
    person: Uuid,
    key: &str,
) -> Result<Option<(Uuid, String, DateTime<Utc>)>, tokio_postgres::Error> {
    Ok(client
        .query_opt(
            "SELECT checkin_id, venue_id, at FROM checkin_keys WHERE person_id = $1 AND key = $2",
            &[&person, &key],
        )
        .await?
        .map(|r| (r.get(0), r.get(1), r.get(2))))
}

/// Forgets keys older than a day; returns how many.
pub async fn sweep(client: &impl GenericClient) -> Result<u64, tokio_postgres::Error> {
    client
        .execute(
            "DELETE FROM checkin_keys WHERE at < now() - make_interval(secs => $1)",
            &[&(REMEMBERED_SECONDS as f64)],
        )
        .await
}
