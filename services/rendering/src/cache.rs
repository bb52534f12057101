//! The render cache in Redis: per person and time bucket, a hash of the status version it was made from, the signed
//! token, the colour, and each format once rendered. A hit costs one round trip (the status version and the render
//! come back in one pipeline) and no signing, rendering or PostgreSQL. An entry made from an older status version
//! is never served: the version is compared on every read.

use hc_domain::Colour;
use hc_platform::store::Store;
use uuid::Uuid;

use hc_platform::status_document;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::IntoStaticStr, strum::EnumString)]
#[strum(serialize_all = "lowercase")]
pub enum Format {
    Svg,
    Png,
    Payload,
}

impl Format {
    pub fn field(self) -> &'static str {
        self.into()
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Svg => "image/svg+xml",
            Format::Png => "image/png",
            Format::Payload => "application/json",
        }
    }
}

fn code_key(store: &Store, person: Uuid, bucket: i64) -> String {
    store.key(&format!(
        "code:{}:{bucket}",
        hc_platform::store::person_tag(person)
    ))
}

/// What one round trip found.
#[derive(Debug, Default)]
pub struct Found {
    /// The person's current status version (scoring's, in Redis).
    pub status_version: Option<i64>,
    /// The cache entry's status version, token, colour and the requested render.
    pub version: Option<i64>,
    pub token: Option<String>,
    pub colour: Option<Colour>,
    pub body: Option<Vec<u8>>,
}

impl Found {
    /// The entry was made from the current status.
    pub fn current(&self) -> bool {
        self.status_version.is_some() && self.status_version == self.version
    }
}

/// The entry's `v`, `token`, `colour` and one render.
type Fields = (Option<i64>, Option<String>, Option<String>, Option<Vec<u8>>);

pub async fn read(
    store: &Store,
    person: Uuid,
    bucket: i64,
    format: Format,
) -> redis::RedisResult<Found> {
    let ((status_version,), (version, token, colour, body)): ((Option<i64>,), Fields) =
        redis::pipe()
            .cmd("HMGET")
            .arg(status_document::key(store, person))
            .arg(status_document::VERSION_FIELD)
            .cmd("HMGET")
            .arg(code_key(store, person, bucket))
            .arg("v")
            .arg("token")
            .arg("colour")
            .arg(format.field())
            .query_async(&mut store.conn())
            .await?;
    Ok(Found {
        status_version,
        version,
        token,
        colour: colour.and_then(|c| c.parse().ok()),
        body,
    })
}

/// A token and one render of it, made from one status version.
pub struct Entry<'a> {
    /// A token signed just now: the entry is replaced whole, so renders of an older token (an older status
    /// version) do not survive next to it. Otherwise the render joins the token already there.
    pub new_token: bool,
    pub version: i64,
    pub token: &'a str,
    pub colour: Colour,
    pub format: Format,
    pub body: &'a [u8],
}

/// Stores an entry for the bucket, kept for two buckets' time.
pub async fn write(
    store: &Store,
    person: Uuid,
    bucket: i64,
    bucket_seconds: i64,
    entry: Entry<'_>,
) -> redis::RedisResult<()> {
    let Entry {
        new_token,
        version,
        token,
        colour,
        format,
        body,
    } = entry;
    let key = code_key(store, person, bucket);
    let mut pipe = redis::pipe();
    if new_token {
        pipe.cmd("DEL").arg(&key).ignore();
    }
    pipe.cmd("HSET")
        .arg(&key)
        .arg("v")
        .arg(version)
        .arg("token")
        .arg(token)
        .arg("colour")
        .arg(colour.as_str())
        .arg(format.field())
        .arg(body)
        .ignore()
        .cmd("EXPIRE")
        .arg(&key)
        .arg(2 * bucket_seconds)
        .ignore()
        .query_async(&mut store.conn())
        .await
}
