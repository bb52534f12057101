//! The three kinds of fact, their row formats, and how a chunk of them is inserted.

use chrono::{DateTime, NaiveDate, Utc};
use deadpool_postgres::GenericClient;
use hc_domain::{CaseStatus, IdNumber, RegionCode, Scope};
use hc_platform::events::{CaseFact, ImportedFacts, NatResultFact, VisitFact};
use hc_platform::http::{JsonFault, missing_field, without_value};
use hc_platform::privacy::BlindIndex;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};

/// As the import path names it: `nat-results`, `cases`, `visits`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumString, strum::IntoStaticStr)]
#[strum(serialize_all = "kebab-case")]
pub enum Kind {
    NatResults,
    Cases,
    Visits,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The scope an official client needs to import this kind.
    pub fn scope(self) -> Scope {
        match self {
            Kind::NatResults => Scope::ImportNat,
            Kind::Cases => Scope::ImportCases,
            Kind::Visits => Scope::ImportVisits,
        }
    }
}

/// Whether a test `result` (`positive` or `negative`, as rows and corrections name it) was positive.
pub fn nat_result(result: &str) -> Result<bool, &'static str> {
    match result {
        "positive" => Ok(true),
        "negative" => Ok(false),
        _ => Err("must be positive or negative"),
    }
}

/// Why a row was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub field: String,
    pub reason: String,
}

fn reject(field: &str, reason: impl Into<String>) -> RowError {
    RowError {
        field: field.to_owned(),
        reason: reason.into(),
    }
}

#[derive(Deserialize)]
struct RawNat {
    id_number: String,
    sample_time: String,
    result: String,
    lab: String,
    /// Where the sample was taken; the client's region if not given.
    #[serde(default)]
    region: Option<String>,
}

#[derive(Deserialize)]
struct RawCase {
    id_number: String,
    status: String,
    since: String,
    #[serde(default)]
    until: Option<String>,
    /// The region that reported the case; the client's region if not given.
    #[serde(default)]
    region: Option<String>,
}

#[derive(Deserialize)]
struct RawVisit {
    id_number: String,
    region: String,
    first_seen: String,
    last_seen: String,
    source: String,
}

/// A validated chunk of facts, held column by column for one `INSERT … SELECT FROM unnest(…)`.
#[derive(Default)]
pub struct Columns {
    pub index: Vec<Vec<u8>>,
    /// The national blind index of each row's person, where the platform takes part in the national exchange.
    pub national: Vec<Option<Vec<u8>>>,
    times_a: Vec<DateTime<Utc>>,
    times_b: Vec<DateTime<Utc>>,
    dates_a: Vec<NaiveDate>,
    dates_b: Vec<Option<NaiveDate>>,
    flags: Vec<bool>,
    text_a: Vec<String>,
    text_b: Vec<String>,
    /// Where each NAT result or case arose (visits carry theirs in `text_a`).
    regions: Vec<Option<String>>,
}

impl Columns {
    /// Facts delivered by the national hub, all of one kind, each for a person registered here (their local index)
    /// with the region that reported it: a case entry keeps the region it names, a test result takes the source's.
    pub fn delivered(rows: &[(Vec<u8>, &hc_platform::exchange::Fact, &str)]) -> Self {
        use hc_platform::exchange::Fact;
        let mut cols = Self::default();
        for (index, fact, source) in rows {
            cols.index.push(index.clone());
            cols.national.push(None);
            match fact {
                Fact::Cases(case) => {
                    cols.regions.push(Some(
                        case.region.clone().unwrap_or_else(|| (*source).to_owned()),
                    ));
                    cols.text_a.push(case.status.clone());
                    cols.dates_a.push(case.since);
                    cols.dates_b.push(case.until);
                }
                Fact::NatResults(nat) => {
                    cols.regions.push(Some((*source).to_owned()));
                    cols.times_a.push(nat.sample_time);
                    cols.flags.push(nat.positive);
                    cols.text_a.push(nat.lab.clone());
                }
            }
        }
        cols
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// The facts themselves, row `i` belonging to `index[i]`, as the `facts.imported` event carries them: the
    /// scoring service keeps its own projection from events and never reads this schema.
    pub fn event_facts(&self, kind: Kind) -> ImportedFacts {
        let rows = 0..self.len();
        match kind {
            Kind::NatResults => ImportedFacts::NatResults(
                rows.map(|i| NatResultFact {
                    sample_time: self.times_a[i],
                    positive: self.flags[i],
                    lab: self.text_a[i].clone(),
                })
                .collect(),
            ),
            Kind::Cases => ImportedFacts::Cases(
                rows.map(|i| CaseFact {
                    status: self.text_a[i].clone(),
                    since: self.dates_a[i],
                    until: self.dates_b[i],
                    region: self.regions[i].clone(),
                })
                .collect(),
            ),
            Kind::Visits => ImportedFacts::Visits(
                rows.map(|i| VisitFact {
                    region: self.text_a[i].clone(),
                    first_seen: self.times_a[i],
                    last_seen: self.times_b[i],
                    source: self.text_b[i].clone(),
                })
                .collect(),
            ),
        }
    }
}

/// What a row is checked against: the blind index, "now" for dates in the future, and the importing client's region
/// (none: nationwide).
pub struct RowContext<'a> {
    pub index: &'a BlindIndex,
    pub national: Option<&'a BlindIndex>,
    pub now: DateTime<Utc>,
    pub client_region: Option<RegionCode>,
}

impl RowContext<'_> {
    /// The region a fact arose in: the row's own if it names one, else the client's. A regional client's power
    /// ends at its region, so its facts must arise within it.
    fn arose_in(&self, raw: Option<&str>) -> Result<Option<RegionCode>, RowError> {
        let given = raw
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(|r| RegionCode::parse(r).map_err(|e| reject("region", e.reason)))
            .transpose()?;
        match (self.client_region, given) {
            (Some(own), Some(region)) if !own.contains(region) => {
                Err(reject("region", "is outside the client's region"))
            }
            (own, given) => Ok(given.or(own)),
        }
    }

    /// The person's blind index, and their national one where the platform exchanges facts.
    fn person(&self, raw: &str) -> Result<(Vec<u8>, Option<Vec<u8>>), RowError> {
        let id = IdNumber::parse(raw, hc_domain::china_time::day_of(self.now))
            .map_err(|e| reject("id_number", e.reason))?;
        Ok((
            self.index.id_number(&id),
            self.national.map(|n| n.id_number(&id)),
        ))
    }

    fn instant(&self, field: &str, raw: &str) -> Result<DateTime<Utc>, RowError> {
        let at = DateTime::parse_from_rfc3339(raw.trim())
            .map_err(|_| {
                reject(
                    field,
                    "must be an RFC 3339 time with offset, e.g. 2022-01-04T08:30:00+08:00",
                )
            })?
            .with_timezone(&Utc);
        // A few minutes of clock skew between a lab's clock and ours is normal.
        if at > self.now + chrono::Duration::minutes(5) {
            return Err(reject(field, "is in the future"));
        }
        Ok(at)
    }

    fn date(&self, field: &str, raw: &str) -> Result<NaiveDate, RowError> {
        let date = NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d")
            .map_err(|_| reject(field, "must be a date YYYY-MM-DD"))?;
        if date > hc_domain::china_time::day_of(self.now) {
            return Err(reject(field, "is in the future"));
        }
        Ok(date)
    }

    /// Validates one row and appends it to `cols`.
    pub fn push(&self, kind: Kind, row: Row<'_>, cols: &mut Columns) -> Result<(), RowError> {
        match kind {
            Kind::NatResults => {
                let raw: RawNat = row.decode()?;
                let positive = nat_result(raw.result.trim()).map_err(|e| reject("result", e))?;
                let lab = raw.lab.trim();
                if lab.is_empty() || lab.chars().count() > 100 {
                    return Err(reject("lab", "must be 1 to 100 characters"));
                }
                let (index, national) = self.person(&raw.id_number)?;
                let sampled = self.instant("sample_time", &raw.sample_time)?;
                let region = self.arose_in(raw.region.as_deref())?;
                cols.index.push(index);
                cols.national.push(national);
                cols.regions.push(region.map(|r| r.to_string()));
                cols.times_a.push(sampled);
                cols.flags.push(positive);
                cols.text_a.push(lab.to_owned());
            }
            Kind::Cases => {
                let raw: RawCase = row.decode()?;
                let status: CaseStatus = raw
                    .status
                    .trim()
                    .parse()
                    .map_err(|e: hc_domain::InvalidValue| reject("status", e.reason))?;
                let (index, national) = self.person(&raw.id_number)?;
                let since = self.date("since", &raw.since)?;
                let until = match raw
                    .until
                    .as_deref()
                    .map(str::trim)
                    .filter(|u| !u.is_empty())
                {
                    Some(u) => {
                        let until = NaiveDate::parse_from_str(u, "%Y-%m-%d")
                            .map_err(|_| reject("until", "must be a date YYYY-MM-DD"))?;
                        if until < since {
                            return Err(reject("until", "is before since"));
                        }
                        Some(until)
                    }
                    None => None,
                };
                let region = self.arose_in(raw.region.as_deref())?;
                cols.index.push(index);
                cols.national.push(national);
                cols.regions.push(region.map(|r| r.to_string()));
                cols.text_a.push(status.as_str().to_owned());
                cols.dates_a.push(since);
                cols.dates_b.push(until);
            }
            Kind::Visits => {
                let raw: RawVisit = row.decode()?;
                let region = self
                    .arose_in(Some(&raw.region))?
                    .ok_or_else(|| reject("region", "is required"))?;
                let source = raw.source.trim();
                if !matches!(source, "carrier" | "venue") {
                    return Err(reject("source", "must be carrier or venue"));
                }
                let (index, national) = self.person(&raw.id_number)?;
                let first = self.instant("first_seen", &raw.first_seen)?;
                let last = self.instant("last_seen", &raw.last_seen)?;
                if last < first {
                    return Err(reject("last_seen", "is before first_seen"));
                }
                cols.index.push(index);
                cols.national.push(national);
                cols.text_a.push(region.to_string());
                cols.times_a.push(first);
                cols.times_b.push(last);
                cols.text_b.push(source.to_owned());
            }
        }
        Ok(())
    }
}

/// One line of the body, in its format.
pub enum Row<'a> {
    Json(&'a [u8]),
    Csv {
        headers: &'a csv::StringRecord,
        record: &'a csv::StringRecord,
    },
}

impl Row<'_> {
    fn decode<T: DeserializeOwned>(&self) -> Result<T, RowError> {
        match self {
            Row::Json(line) => {
                // The fast path; only a row that fails is parsed again to find the field at fault.
                if let Ok(row) = serde_json::from_slice(line) {
                    return Ok(row);
                }
                let mut de = serde_json::Deserializer::from_slice(line);
                serde_path_to_error::deserialize(&mut de).map_err(|err| {
                    match hc_platform::http::json_fault(err, "row") {
                        JsonFault::Malformed(reason) => {
                            reject("row", format!("malformed JSON: {reason}"))
                        }
                        JsonFault::Field { field, reason } => reject(&field, reason),
                    }
                })
            }
            Row::Csv { headers, record } => record.deserialize(Some(headers)).map_err(|err| {
                let (field, reason) = match err.kind() {
                    csv::ErrorKind::Deserialize { err, .. } => (
                        err.field()
                            .and_then(|i| headers.get(i as usize))
                            .map(str::to_owned),
                        without_value(&err.kind().to_string()),
                    ),
                    _ => (None, err.to_string()),
                };
                let field = field.or_else(|| missing_field(&reason));
                reject(&field.unwrap_or_else(|| "row".into()), reason)
            }),
        }
    }
}

/// Who sent a chunk: stored on every fact it adds (a fact sent again keeps its first sender).
#[derive(Clone, Copy)]
pub struct Sender<'a> {
    pub client_id: &'a str,
    pub batch_id: &'a str,
}

/// Inserts a chunk and returns how many facts were new. The fast path COPYs the chunk straight into the fact
/// table; if any row is already stored (a resend, the same fact in another batch or twice in this chunk), the
/// unique key stops the COPY, the savepoint undoes it, and the chunk goes in again row by row with
/// `ON CONFLICT DO NOTHING`, which is about three times slower (docs/benchmarks.md). A fact already stored is never
/// changed by an import: that is a correction (`routes::corrections`).
pub async fn insert(
    tx: &deadpool_postgres::Transaction<'_>,
    kind: Kind,
    c: &Columns,
    sender: Sender<'_>,
) -> Result<u64, tokio_postgres::Error> {
    if c.len() == 0 {
        return Ok(0);
    }
    tx.batch_execute("SAVEPOINT chunk").await?;
    match copy(tx, kind, c, sender).await {
        Ok(n) => {
            tx.batch_execute("RELEASE SAVEPOINT chunk").await?;
            Ok(n)
        }
        Err(err) if err.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) => {
            tx.batch_execute("ROLLBACK TO SAVEPOINT chunk").await?;
            insert_skipping_duplicates(tx, kind, c, sender).await
        }
        Err(err) => Err(err),
    }
}

/// Where a kind's facts go: its table, the five columns before the sender's, their binary COPY types, and the
/// casts of the same columns as arrays for `unnest`.
struct Target {
    table: &'static str,
    columns: &'static str,
    types: [Type; 5],
    arrays: &'static str,
}

fn target(kind: Kind) -> Target {
    use Type as T;
    match kind {
        Kind::NatResults => Target {
            table: "nat_results",
            columns: "id_index, sample_time, positive, lab, region",
            types: [T::BYTEA, T::TIMESTAMPTZ, T::BOOL, T::TEXT, T::BPCHAR],
            arrays: "$1::bytea[], $2::timestamptz[], $3::bool[], $4::text[], $5::text[]",
        },
        Kind::Cases => Target {
            table: "case_status",
            columns: "id_index, status, since, until, region",
            types: [T::BYTEA, T::TEXT, T::DATE, T::DATE, T::BPCHAR],
            arrays: "$1::bytea[], $2::text[], $3::date[], $4::date[], $5::text[]",
        },
        Kind::Visits => Target {
            table: "visits",
            columns: "id_index, region, first_seen, last_seen, source",
            types: [T::BYTEA, T::BPCHAR, T::TIMESTAMPTZ, T::TIMESTAMPTZ, T::TEXT],
            arrays: "$1::bytea[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::text[]",
        },
    }
}

type Param<'a> = &'a (dyn ToSql + Sync);

/// One column of a chunk, bound whole as an array (`unnest`) or one row at a time (COPY).
trait Column: Sync {
    fn whole(&self) -> Param<'_>;
    fn at(&self, row: usize) -> Param<'_>;
}

impl<T: ToSql + Sync> Column for Vec<T> {
    fn whole(&self) -> Param<'_> {
        self
    }

    fn at(&self, row: usize) -> Param<'_> {
        &self[row]
    }
}

impl Columns {
    /// `kind`'s five columns, in its [`Target`]'s order: the one place that pairs the columns with the table's.
    fn of(&self, kind: Kind) -> [&dyn Column; 5] {
        match kind {
            Kind::NatResults => [
                &self.index,
                &self.times_a,
                &self.flags,
                &self.text_a,
                &self.regions,
            ],
            Kind::Cases => [
                &self.index,
                &self.text_a,
                &self.dates_a,
                &self.dates_b,
                &self.regions,
            ],
            Kind::Visits => [
                &self.index,
                &self.text_a,
                &self.times_a,
                &self.times_b,
                &self.text_b,
            ],
        }
    }
}

async fn copy(
    tx: &deadpool_postgres::Transaction<'_>,
    kind: Kind,
    c: &Columns,
    sender: Sender<'_>,
) -> Result<u64, tokio_postgres::Error> {
    let t = target(kind);
    let statement = format!(
        "COPY {} ({}, client_id, batch_id) FROM STDIN BINARY",
        t.table, t.columns
    );
    let types = [&t.types[..], &[Type::TEXT, Type::TEXT]].concat();
    let sink = tx.copy_in(statement.as_str()).await?;
    let mut writer = std::pin::pin!(BinaryCopyInWriter::new(sink, &types));
    let columns = c.of(kind);
    for i in 0..c.len() {
        let [a, b, d, e, f] = columns.map(|column| column.at(i));
        let row: [Param<'_>; 7] = [a, b, d, e, f, &sender.client_id, &sender.batch_id];
        writer.as_mut().write(&row).await?;
    }
    writer.finish().await
}

async fn insert_skipping_duplicates(
    client: &impl GenericClient,
    kind: Kind,
    c: &Columns,
    sender: Sender<'_>,
) -> Result<u64, tokio_postgres::Error> {
    let t = target(kind);
    let statement = format!(
        "INSERT INTO {} ({}, client_id, batch_id) SELECT *, $6, $7 FROM unnest({}) ON CONFLICT DO NOTHING",
        t.table, t.columns, t.arrays
    );
    let [a, b, d, e, f] = c.of(kind).map(|column| column.whole());
    let params: [Param<'_>; 7] = [a, b, d, e, f, &sender.client_id, &sender.batch_id];
    client.execute(statement.as_str(), &params).await
}
