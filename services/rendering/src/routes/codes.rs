//! `GET /v1/codes/me`: the citizen's code, signed over their current status, as SVG, PNG or the payload.

use actix_web::http::header::{self, HeaderValue};
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use hc_domain::Colour;
use hc_platform::auth::Citizen;
use hc_platform::error::ApiError;
use hc_token::{CodeClaims, Flags};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::cache::{self, Format};
use crate::memory::Rendered;
use crate::render;
use crate::state::AppState;
use crate::status::Status;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CodeQuery {
    /// `svg` (the default), `png`, or `payload` (the code's text and what it says, as JSON).
    #[param(inline, pattern = "^(svg|png|payload)$")]
    pub format: Option<String>,
}

/// The `payload` format.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CodePayload {
    /// The code itself (`HCQ1:…`), what the QR code holds.
    pub code: String,
    #[schema(value_type = String, example = "green")]
    pub colour: Colour,
    /// `standard` or `international`.
    pub variant: String,
    pub status_version: i64,
    pub expires_at: DateTime<Utc>,
    /// Ask again after this: a new code is signed per half of a code's life.
    pub refresh_after: DateTime<Utc>,
    /// The status could not be read fresh; this is the last one known, last known to be current at `status_at`.
    pub stale: bool,
    pub status_at: Option<DateTime<Utc>>,
}

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).unwrap_or_default()
}

/// What the request is about: the time bucket and the validator of a given version.
struct Window {
    bucket: i64,
    bucket_seconds: i64,
}

impl Window {
    fn start(&self) -> i64 {
        self.bucket * self.bucket_seconds
    }

    fn end(&self) -> i64 {
        self.start() + self.bucket_seconds
    }

    fn etag(&self, version: i64, format: Format, stale: bool) -> String {
        format!(
            "\"{version}.{}.{}{}\"",
            self.bucket,
            format.field(),
            if stale { ".stale" } else { "" }
        )
    }
}

/// A 304 (counted) when the client already holds this code.
fn not_modified(req: &HttpRequest, etag: &str) -> Option<HttpResponse> {
    let held = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    held.then(|| {
        outcome("not_modified");
        HttpResponse::NotModified()
            .insert_header((header::ETAG, etag.to_owned()))
            .insert_header(cache_control())
            .finish()
    })
}

fn respond(format: Format, body: Bytes, colour: Colour, etag: &str, stale: bool) -> HttpResponse {
    let mut r = HttpResponse::Ok();
    r.insert_header((header::CONTENT_TYPE, format.content_type()))
        .insert_header((header::ETAG, etag))
        .insert_header(cache_control())
        .insert_header(("X-Code-Colour", colour.as_str()));
    if stale {
        r.insert_header(("X-Code-Stale", "true"));
    }
    r.body(body)
}

fn cache_control() -> (header::HeaderName, HeaderValue) {
    // Private: it is one person's code. `no-cache`, not a max-age: a browser keeps it but asks again every time
    // (answered 304 while nothing changed), so a colour that changed is never hidden behind a cached response.
    (
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    )
}

fn outcome(label: &'static str) {
    // One handle per outcome and worker thread, looked up once (the lookup hashes its labels on every call).
    thread_local! {
        static HANDLES: std::cell::RefCell<Vec<(&'static str, metrics::Counter)>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    HANDLES.with(|handles| {
        let mut handles = handles.borrow_mut();
        match handles.iter().find(|(l, _)| *l == label) {
            Some((_, c)) => c.increment(1),
            None => {
                let c = metrics::counter!("rendering_code_requests_total", "outcome" => label);
                c.increment(1);
                handles.push((label, c));
            }
        }
    });
}

#[utoipa::path(get, path = "/v1/codes/me", tag = "codes", security(("bearer" = [])), params(CodeQuery),
    responses(
        (status = 200, description = "The code: an SVG (the default) or PNG QR code (headers X-Code-Colour, X-Code-Stale), or the payload",
            content((String = "image/svg+xml"), (Vec<u8> = "image/png"), (CodePayload = "application/json"))),
        (status = 304, description = "Unchanged since the ETag sent in If-None-Match"),
        (status = 401, description = "No valid citizen access token", body = hc_platform::error::Problem),
        (status = 403, description = "The token is not a citizen's", body = hc_platform::error::Problem),
        (status = 422, description = "An unknown format (the problem names the field)", body = hc_platform::error::Problem),
        (status = 404, description = "No status yet for this person", body = hc_platform::error::Problem),
        (status = 503, description = "No status can be read now and none recent enough is known here (scoring silent or unreachable past rendering.stale_max_age_seconds); retry after Retry-After", body = hc_platform::error::Problem),
    ))]
pub async fn mine(
    state: web::Data<AppState>,
    citizen: Citizen,
    query: web::Query<CodeQuery>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let person: Uuid = citizen.0.0;
    let format = match query.format.as_deref() {
        None => Format::Svg,
        Some(f) => f
            .parse()
            .map_err(|_| ApiError::unprocessable("format", "must be svg, png or payload"))?,
    };
    let settings = &state.settings;
    let now = Utc::now().timestamp();
    let bucket_seconds = settings.bucket_seconds();
    let window = Window {
        bucket: now / bucket_seconds,
        bucket_seconds,
    };
    // While scoring is silent every code is flagged stale as of its last beat: only renders made so are served from
    // memory, and the render cache in Redis (current codes only) is skipped.
    let silent_since = state.status.scoring_silent_since().map(|t| t.timestamp());
    let scoring_silent = silent_since.is_some();
    if let Some(memory) = &state.memory
        && let Some(r) = memory.get(person, format, window.bucket, silent_since)
    {
        let stale = r.stale_since.is_some();
        let etag = window.etag(r.version, format, stale);
        if let Some(unchanged) = not_modified(&req, &etag) {
            return Ok(unchanged);
        }
        outcome("memory_hit");
        return Ok(respond(format, r.body.clone(), r.colour, &etag, stale));
    }
    // A token already signed for this bucket and status version, whose requested render is not cached yet.
    let mut signed: Option<(i64, String)> = None;
    if settings.render_cache_enabled && settings.status_from_redis && !scoring_silent {
        match cache::read(&state.store, person, window.bucket, format).await {
            Ok(found) if found.current() => {
                let version = found.version.unwrap_or_default();
                let etag = window.etag(version, format, false);
                if let Some(unchanged) = not_modified(&req, &etag) {
                    return Ok(unchanged);
                }
                if let (Some(body), Some(colour)) = (found.body, found.colour) {
                    outcome("hit");
                    let body = Bytes::from(body);
                    let current = Rendered {
                        bucket: window.bucket,
                        version,
                        colour,
                        stale_since: None,
                        body: body.clone(),
                    };
                    remember(&state, person, format, current);
                    return Ok(respond(format, body, colour, &etag, false));
                }
                signed = found.token.map(|t| (version, t));
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "render cache unreadable; rendering afresh"),
        }
    }
    let bearer = hc_platform::auth::bearer(&req).unwrap_or_default();
    let (status, source) = state.status.current(person, bearer).await?;
    let stale_since = source.stale_since();
    let stale = stale_since.is_some();
    let etag = window.etag(status.version, format, stale);
    if let Some(unchanged) = not_modified(&req, &etag) {
        return Ok(unchanged);
    }
    // One token per bucket and version, whatever the format: the SVG, the PNG and the payload show the same code.
    let (token, new_token) = match signed.filter(|(v, _)| *v == status.version && !stale) {
        Some((_, token)) => (token, false),
        None => (sign(&state, person, &status, stale_since, &window)?, true),
    };
    let body = render_as(&state, format, &token, &status, stale_since, &window)?;
    if settings.render_cache_enabled
        && settings.status_from_redis
        && !stale
        && let Err(err) = cache::write(
            &state.store,
            person,
            window.bucket,
            bucket_seconds,
            cache::Entry {
                new_token,
                version: status.version,
                token: &token,
                colour: status.colour,
                format,
                body: &body,
            },
        )
        .await
    {
        tracing::warn!(error = %err, "render cache not written");
    }
    outcome(source.as_str());
    let body = Bytes::from(body);
    // A stale code is kept in memory too (as stale): while scoring is silent, each person's code is signed once a
    // bucket, not at every request.
    let code = Rendered {
        bucket: window.bucket,
        version: status.version,
        colour: status.colour,
        stale_since: stale_since.map(|t| t.timestamp()),
        body: body.clone(),
    };
    remember(&state, person, format, code);
    Ok(respond(format, body, status.colour, &etag, stale))
}

fn remember(state: &AppState, person: Uuid, format: Format, rendered: Rendered) {
    if let Some(memory) = &state.memory {
        memory.put(person, format, rendered);
    }
}

fn sign(
    state: &AppState,
    person: Uuid,
    status: &Status,
    stale_since: Option<DateTime<Utc>>,
    window: &Window,
) -> Result<String, ApiError> {
    let claims = CodeClaims {
        issuer: state.keys.signer.issuer().to_owned(),
        issued_at: window.start(),
        expires_at: window.start() + state.settings.token_seconds,
        subject: state.keys.pseudonyms.seal(person),
        colour: status.colour,
        status_version: u64::try_from(status.version).unwrap_or_default(),
        // To the hour, rounded down: never younger than it was, and less that two codes share.
        negative_test_at: status
            .negative_test_at
            .map(|t| t.timestamp() - t.timestamp().rem_euclid(3600)),
        status_at: stale_since.map(|t| t.timestamp()),
        flags: Flags::default()
            .with(Flags::STALE, stale_since.is_some())
            .with(Flags::INTERNATIONAL, status.variant == "international"),
    };
    let token = hc_token::encode(&claims, &state.keys.signer).map_err(anyhow::Error::from)?;
    metrics::counter!("rendering_signatures_total").increment(1);
    Ok(token)
}

fn render_as(
    state: &AppState,
    format: Format,
    token: &str,
    status: &Status,
    stale_since: Option<DateTime<Utc>>,
    window: &Window,
) -> Result<Vec<u8>, ApiError> {
    metrics::counter!("rendering_renders_total", "format" => format.field()).increment(1);
    Ok(match format {
        Format::Svg => render::svg(token, status.colour)?.into_bytes(),
        Format::Png => render::png(token, status.colour, state.settings.qr_module_px)?,
        Format::Payload => serde_json::to_vec(&CodePayload {
            code: token.to_owned(),
            colour: status.colour,
            variant: status.variant.clone(),
            status_version: status.version,
            expires_at: at(window.start() + state.settings.token_seconds),
            refresh_after: at(window.end()),
            stale: stale_since.is_some(),
            status_at: stale_since,
        })
        .map_err(anyhow::Error::from)?,
    })
}
