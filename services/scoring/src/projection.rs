//! Scoring's projection of the facts, fed by events: each handler stores what its event says (idempotently, by the
//! same natural keys as the publisher) and returns whose colour may have changed.

use deadpool_postgres::GenericClient;
use hc_domain::china_time::start_of;
use hc_platform::events::{DeclarationSubmitted, FactsImported, ImportedFacts, PersonRegistered};
use hc_platform::streams::Delivered;

/// A blind index: 32 bytes.
pub type Index = Vec<u8>;

/// `person.registered`, any number of them: links each index to its person, in one statement.
pub async fn people_registered(
    client: &impl GenericClient,
    events: &[Delivered],
) -> anyhow::Result<Vec<Index>> {
    let decoded = (events.iter().map(PersonRegistered::decode)).collect::<Result<Vec<_>, _>>()?;
    let people: Vec<_> = decoded.iter().map(|e| e.person_id).collect();
    let homes: Vec<_> = decoded.iter().map(|e| &e.home_region).collect();
    let indexes: Vec<Index> = decoded.iter().map(|e| e.id_number_index.clone()).collect();
    client
        .execute(
            "INSERT INTO subjects (id_index, person_id, home_region)
             SELECT * FROM unnest($1::bytea[], $2::uuid[], $3::text[]) ON CONFLICT DO NOTHING",
            &[&indexes, &people, &homes],
        )
        .await?;
    Ok(indexes)
}

/// `declaration.submitted`: the day's declaration replaces an earlier one of the same day; the regions declared
/// become visits on that day. A declaration of a person whose registration has not reached us yet fails, so the
/// event stays pending and comes again. The caller marks the digests out of date ([`facts_changed`]).
pub async fn declaration_submitted(
    client: &impl GenericClient,
    event: &Delivered,
) -> anyhow::Result<Vec<Index>> {
    let d = DeclarationSubmitted::decode(event)?;
    let Some(index) = crate::db::subjects::index_of(client, d.person_id).await? else {
        anyhow::bail!("person {} is not registered here yet", d.person_id);
    };
    // Only a later declaration replaces the day's: a replayed or redelivered older one may come after it.
    let seq = hc_platform::outbox::sequence_of(&event.event_id);
    client
        .execute(
            "INSERT INTO f_declarations (id_index, day, declaration_id, fever, symptoms, contact_date, event_seq)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (id_index, day) DO UPDATE SET declaration_id = excluded.declaration_id,
                 fever = excluded.fever, symptoms = excluded.symptoms, contact_date = excluded.contact_date,
                 event_seq = excluded.event_seq
             WHERE f_declarations.event_seq IS NULL OR excluded.event_seq IS NULL
                OR excluded.event_seq > f_declarations.event_seq",
            &[&index, &d.day, &d.declaration_id, &d.fever, &!d.symptoms.is_empty(), &d.contact_date, &seq],
        )
        .await?;
    let at = start_of(d.day);
    let mut regions = d.travelled_regions;
    regions.push(d.current_region);
    regions.sort();
    regions.dedup();
    client
        .execute(
            "INSERT INTO f_visits (id_index, region, first_seen, last_seen, source)
             SELECT $1, r, $3, $3, 'declared' FROM unnest($2::text[]) AS r ON CONFLICT DO NOTHING",
            &[&index, &regions, &at],
        )
        .await?;
    Ok(vec![index])
}

/// `facts.imported`: a chunk of official facts, row `i` belonging to `people[i]`. The caller marks the digests out
/// of date ([`facts_changed`]). Also says whether the facts were trajectories or case lists, which arrive dated
/// days back.
pub async fn facts_imported(
    client: &impl GenericClient,
    event: &Delivered,
) -> anyhow::Result<(Vec<Index>, bool)> {
    let FactsImported {
        people,
        facts,
        correction,
        ..
    } = FactsImported::decode(event)?;
    // A fact already held is kept as it is, as declaration keeps it: a row sent again in another batch must not
    // change a colour unseen. Only an official's audited correction replaces it.
    let on_conflict = |replace: &str| {
        if correction {
            format!("ON CONFLICT ON CONSTRAINT {replace}")
        } else {
            "ON CONFLICT DO NOTHING".to_owned()
        }
    };
    match &facts {
        ImportedFacts::NatResults(rows) => {
            let times: Vec<_> = rows.iter().map(|r| r.sample_time).collect();
            let positive: Vec<_> = rows.iter().map(|r| r.positive).collect();
            let lab: Vec<_> = rows.iter().map(|r| r.lab.as_str()).collect();
            let conflict = on_conflict("f_nat_key DO UPDATE SET positive = excluded.positive");
            client
                .execute(
                    &format!("INSERT INTO f_nat (id_index, sample_time, positive, lab)
                     SELECT * FROM unnest($1::bytea[], $2::timestamptz[], $3::bool[], $4::text[]) {conflict}"),
                    &[&people, &times, &positive, &lab],
                )
                .await?;
        }
        ImportedFacts::Cases(rows) => {
            let status: Vec<_> = rows.iter().map(|r| r.status.as_str()).collect();
            let since: Vec<_> = rows.iter().map(|r| r.since).collect();
            let until: Vec<_> = rows.iter().map(|r| r.until).collect();
            let region: Vec<_> = rows.iter().map(|r| r.region.as_deref()).collect();
            let conflict = on_conflict("f_cases_key DO UPDATE SET until = excluded.until");
            client
                .execute(
                    &format!("INSERT INTO f_cases (id_index, status, since, until, region)
                     SELECT * FROM unnest($1::bytea[], $2::text[], $3::date[], $4::date[], $5::text[]) {conflict}"),
                    &[&people, &status, &since, &until, &region],
                )
                .await?;
        }
        ImportedFacts::Visits(rows) => {
            let region: Vec<_> = rows.iter().map(|r| r.region.as_str()).collect();
            let first: Vec<_> = rows.iter().map(|r| r.first_seen).collect();
            let last: Vec<_> = rows.iter().map(|r| r.last_seen).collect();
            let source: Vec<_> = rows.iter().map(|r| r.source.as_str()).collect();
            client
                .execute(
                    "INSERT INTO f_visits (id_index, region, first_seen, last_seen, source)
                     SELECT * FROM unnest($1::bytea[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::text[])
                     ON CONFLICT DO NOTHING",
                    &[&people, &region, &first, &last, &source],
                )
                .await?;
        }
    }
    let dated_back = !matches!(facts, ImportedFacts::NatResults(_));
    Ok((people, dated_back))
}

/// Marks the digests of `indexes` (sorted, without duplicates) out of date, in the transaction that stored their
/// new facts (so a digest built on a version no older than this one includes them). Locks the subjects in index
/// order, as every recolouring does, and only once every fact of the transaction is written, so two
/// transactions never wait on each other's subjects in opposite orders.
pub async fn facts_changed(client: &impl GenericClient, indexes: &[Index]) -> anyhow::Result<()> {
    client
        .execute(
            "UPDATE subjects s SET facts_version = s.facts_version + 1
             FROM (SELECT id_index FROM subjects WHERE id_index = ANY($1) ORDER BY id_index FOR UPDATE) l
             WHERE s.id_index = l.id_index",
            &[&indexes],
        )
        .await?;
    Ok(())
}
