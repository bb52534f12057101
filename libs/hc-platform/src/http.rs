//! The HTTP server every service runs: middleware in a fixed order, health and metrics routes, a JSON body
//! extractor whose errors name the field, and request telemetry (span with W3C parent, metrics, access log).

use std::net::TcpListener;
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, Server, ServiceRequest, ServiceResponse};
use actix_web::http::header::{CONTENT_TYPE, ContentType, HeaderMap};
use actix_web::middleware::{Next, from_fn};
use actix_web::{App, FromRequest, HttpRequest, HttpResponse, HttpServer, web};
use futures_util::future::LocalBoxFuture;
use opentelemetry::propagation::Extractor;
use serde::de::DeserializeOwned;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::auth::TokenVerifier;
use crate::defences::{self, Defences};
use crate::error::ApiError;
use crate::health::{self, Dependencies};
use crate::metrics;

/// What the platform hands every service's HTTP app.
#[derive(Clone)]
pub struct Platform {
    pub defences: web::Data<Defences>,
    pub verifier: web::Data<TokenVerifier>,
    pub dependencies: web::Data<Dependencies>,
    pub json_body_bytes: usize,
    pub workers: usize,
    /// Origins allowed to call from a browser; empty: none.
    pub cors_origins: Vec<String>,
    /// The service's certificate: it then serves HTTPS only.
    pub tls: Option<rustls::ServerConfig>,
    /// The service's documented routes: the `Allow` header of a 405 (a path not documented, such as health, metrics
    /// or a page, answers GET), and which operations are public.
    pub routes: web::Data<crate::openapi::Routes>,
}

/// CORS for the configured origins: the methods and headers the public API uses, and the response headers a page
/// needs to read (validators and the code's colour).
fn cors(origins: &[String]) -> actix_cors::Cors {
    origins
        .iter()
        .fold(actix_cors::Cors::default(), |c, o| c.allowed_origin(o))
        .allowed_methods(["GET", "POST", "PUT"])
        .allowed_headers([
            actix_web::http::header::AUTHORIZATION,
            actix_web::http::header::CONTENT_TYPE,
            actix_web::http::header::IF_NONE_MATCH,
            actix_web::http::header::HeaderName::from_static("idempotency-key"),
        ])
        .expose_headers(["etag", "retry-after", "x-code-colour", "x-code-stale"])
        .max_age(600)
}

/// `GET /openapi.json`: the service's OpenAPI document, generated from its handlers' annotations.
async fn openapi_json(routes: web::Data<crate::openapi::Routes>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(routes.document.clone())
}

/// Runs the service's routes (`configure`) behind the platform's middleware on an already bound listener.
pub fn serve<F>(listener: TcpListener, platform: Platform, configure: F) -> std::io::Result<Server>
where
    F: Fn(&mut web::ServiceConfig) + Send + Clone + 'static,
{
    let _ = metrics::handle();
    let sweeper = platform.defences.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(60));
        loop {
            every.tick().await;
            sweeper.forget_idle_buckets();
        }
    });
    let workers = platform.workers;
    let cors_origins = platform.cors_origins.clone();
    let tls = platform.tls.clone();
    let routes = platform.routes.clone();
    let server = HttpServer::new(move || {
        // `wrap` nests outwards: observe sees everything, then the unread-body hold (it covers every refusal),
        // rate limit, admission, timeout, the handler.
        App::new()
            .app_data(platform.defences.clone())
            .app_data(platform.verifier.clone())
            .app_data(platform.dependencies.clone())
            .app_data(routes.clone())
            .app_data(web::PayloadConfig::new(platform.json_body_bytes))
            // A query string that does not fit its handler's parameters is a 422 problem naming the parameter and
            // the problem, never its value, like every other bad input (actix's default is a plain-text 400).
            .app_data(web::QueryConfig::default().error_handler(|err, _| {
                let message = match &err {
                    actix_web::error::QueryPayloadError::Deserialize(inner) => inner.to_string(),
                    other => other.to_string(),
                };
                let reason = without_value(&message);
                let field = missing_field(&reason).unwrap_or_else(|| "query".to_owned());
                ApiError::unprocessable(field, reason).into()
            }))
            // A path segment that does not parse (a malformed id) is a 422 problem naming the segment, never echoing
            // it (actix's default is a plain-text 404 quoting the value).
            .app_data(web::PathConfig::default().error_handler(|_, req| {
                let names: Vec<&str> = req.match_info().iter().map(|(name, _)| name).collect();
                let field = match names.as_slice() {
                    [one] => (*one).to_owned(),
                    _ => "path".to_owned(),
                };
                ApiError::unprocessable(field, "is not of the documented form").into()
            }))
            .route("/openapi.json", web::get().to(openapi_json))
            .configure(health::routes)
            .configure(metrics::routes)
            .configure(configure.clone())
            // A path that a route matches, asked with a method none of its routes answers, is a 405; any other
            // path is a 404 (both problems, like every other error).
            .default_service(web::to(|req: HttpRequest| async move {
                Err::<actix_web::HttpResponse, _>(match req.match_pattern() {
                    Some(pattern) => ApiError::MethodNotAllowed {
                        method: req.method().to_string(),
                        allow: req
                            .app_data::<web::Data<crate::openapi::Routes>>()
                            .and_then(|routes| routes.allow.get(&pattern).cloned())
                            .unwrap_or_else(|| "GET".into()),
                    },
                    None => ApiError::NotFound { what: "route" },
                })
            }))
            .wrap(from_fn(defences::timeout))
            .wrap(from_fn(defences::admission))
            .wrap(from_fn(defences::rate_limit_by_ip))
            .wrap(from_fn(crate::unread_body::hold_unread_body))
            .wrap(from_fn(observe))
            // Outermost: a browser's preflight is answered before any limit or authentication.
            .wrap(actix_web::middleware::Condition::new(
                !cors_origins.is_empty(),
                cors(&cors_origins),
            ))
    })
    .shutdown_timeout(10);
    let mut server = match tls {
        Some(config) => server.listen_rustls_0_23(listener, config)?,
        None => server.listen(listener)?,
    };
    if workers > 0 {
        server = server.workers(workers);
    }
    Ok(server.run())
}

/// Adds the current span's W3C trace context (`traceparent`, `tracestate`) to an outgoing request.
pub fn with_trace_context(request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    let context = tracing::Span::current().context();
    let mut headers = std::collections::HashMap::new();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&context, &mut headers));
    headers.into_iter().fold(request, |request, (name, value)| {
        request.header(name, value)
    })
}

struct HeaderCarrier<'a>(&'a HeaderMap);

impl Extractor for HeaderCarrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// One span per request (child of the caller's `traceparent`), the request metrics, and an access log line.
/// Only the route template is recorded, never the raw path or query, which may hold personal data.
async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = req.method().clone();
    let method = method.as_str();
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let parent = opentelemetry::global::get_text_map_propagator(|p| {
        p.extract(&HeaderCarrier(req.headers()))
    });
    let span = tracing::info_span!(
        "http.request",
        http.method = method,
        http.route = route.as_str(),
        http.status = tracing::field::Empty,
        otel.kind = "server"
    );
    let _ = span.set_parent(parent);
    let result = next.call(req).instrument(span.clone()).await;
    let status = match &result {
        Ok(response) => response.status().as_u16(),
        Err(err) => err.as_response_error().status_code().as_u16(),
    };
    let elapsed = started.elapsed().as_secs_f64();
    span.record("http.status", status);
    metrics::record_request(method, &route, status, elapsed);
    span.in_scope(|| {
        if status >= 400 {
            tracing::info!(target: "access", method, route, status, latency_ms = elapsed * 1e3, "request");
        } else {
            tracing::debug!(target: "access", method, route, status, latency_ms = elapsed * 1e3, "request");
        }
    });
    result
}

/// A JSON body. Errors are problem+json: 415 for another media type, 413 past the size limit, 400 for
/// malformed JSON and 422 naming the field (`field` is the path, e.g. `scopes[2]`) for a wrong shape.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let is_json = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|ct| ct.split(';').next())
            .is_some_and(|mime| {
                mime.trim() == "application/json" || mime.trim().ends_with("+json")
            });
        let body = web::Bytes::from_request(req, payload);
        let req = req.clone();
        Box::pin(async move {
            let parsed = Self::parse(is_json, body).await;
            // Who is asking is judged before what they sent: actix runs a handler's extractors side by side, and a
            // token check that waits (the issuer's keys fetched on a cold start) would otherwise lose to a body
            // error, answering 422 to a caller it should refuse. Only the failure path pays for this.
            // A public operation judges no token, sent or not.
            let public = req.match_pattern().is_some_and(|pattern| {
                req.app_data::<web::Data<crate::openapi::Routes>>()
                    .is_some_and(|routes| routes.is_public(req.method().as_str(), &pattern))
            });
            if parsed.is_err()
                && !public
                && req
                    .headers()
                    .contains_key(actix_web::http::header::AUTHORIZATION)
            {
                crate::auth::authenticate(&req).await?;
            }
            parsed
        })
    }
}

impl<T: DeserializeOwned + 'static> Json<T> {
    async fn parse(
        is_json: bool,
        body: impl std::future::Future<Output = Result<web::Bytes, actix_web::Error>>,
    ) -> Result<Self, ApiError> {
        if !is_json {
            return Err(ApiError::UnsupportedMediaType {
                detail: "the body must be application/json".into(),
            });
        }
        let bytes = body.await.map_err(|err| {
            if err.as_response_error().status_code()
                == actix_web::http::StatusCode::PAYLOAD_TOO_LARGE
            {
                ApiError::PayloadTooLarge {
                    detail: "the body is larger than this endpoint accepts".into(),
                }
            } else {
                ApiError::BadRequest {
                    detail: "the body could not be read".into(),
                }
            }
        })?;
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        serde_path_to_error::deserialize(&mut de)
            .map(Json)
            .map_err(|err| match json_fault(err, "body") {
                JsonFault::Malformed(reason) => ApiError::BadRequest {
                    detail: format!("malformed JSON: {reason}"),
                },
                JsonFault::Field { field, reason } => ApiError::Unprocessable { field, reason },
            })
    }
}

/// What was wrong with a JSON document that did not deserialize.
#[derive(Debug, PartialEq, Eq)]
pub enum JsonFault {
    /// Not JSON at all, or cut short: what and where (line and column).
    Malformed(String),
    /// The field at fault (`root` when it is the whole document) and why.
    Field { field: String, reason: String },
}

/// Names the field at fault and the problem, never the value: a value may be personal (an ID number sent as a JSON
/// number appears in serde's message as "invalid type: integer `4401…`").
pub fn json_fault(err: serde_path_to_error::Error<serde_json::Error>, root: &str) -> JsonFault {
    let path = err.path().to_string();
    let inner = err.into_inner();
    if inner.is_syntax() || inner.is_eof() {
        // Where the document breaks (a syntax error quotes no value).
        return JsonFault::Malformed(inner.to_string());
    }
    let reason = without_value(&inner.to_string());
    let field = if path == "." {
        missing_field(&reason).unwrap_or_else(|| root.to_owned())
    } else {
        path
    };
    JsonFault::Field { field, reason }
}

/// serde's message without its position and without any value it quotes: "invalid type: integer `4401…`, expected
/// a string" becomes "invalid type, expected a string".
pub fn without_value(message: &str) -> String {
    let message = message.split(" at line ").next().unwrap_or(message);
    for kind in [
        "invalid type",
        "invalid value",
        "invalid length",
        "unknown variant",
    ] {
        if message.starts_with(kind) {
            return match message.split_once(", expected ") {
                Some((_, expected)) => format!("{kind}, expected {expected}"),
                None => kind.to_owned(),
            };
        }
    }
    message.to_owned()
}

/// serde reports a missing field at the parent's path; the field's name is in the message.
pub fn missing_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("missing field `")?;
    Some(rest.split('`').next()?.to_owned())
}

/// The request's `Idempotency-Key`, if any: 1 to 200 visible ASCII characters, else a 422 naming the header.
pub fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    match req.headers().get("Idempotency-Key") {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .filter(|k| (1..=200).contains(&k.len()))
            .map(|k| Some(k.to_owned()))
            .ok_or_else(|| {
                ApiError::unprocessable(
                    "Idempotency-Key",
                    "must be 1 to 200 visible ASCII characters",
                )
            }),
    }
}

/// A free-text field trimmed, if it is `chars` characters long; otherwise a 422 naming `field`.
pub fn text(
    field: impl Into<String>,
    raw: &str,
    chars: std::ops::RangeInclusive<usize>,
) -> Result<&str, ApiError> {
    let text = raw.trim();
    if chars.contains(&text.chars().count()) {
        return Ok(text);
    }
    let (min, max) = chars.into_inner();
    Err(ApiError::unprocessable(
        field,
        format!("must be {min} to {max} characters"),
    ))
}

/// A page's size: `given`, or `default`, within 1 to `max`; otherwise a 422 naming `limit`.
pub fn page_limit(given: Option<i64>, default: i64, max: i64) -> Result<i64, ApiError> {
    let limit = given.unwrap_or(default);
    if !(1..=max).contains(&limit) {
        return Err(ApiError::unprocessable(
            "limit",
            format!("must be 1 to {max}"),
        ));
    }
    Ok(limit)
}

/// A page from the `limit + 1` rows read: the first `limit`, and the cursor of the last when there were more.
pub fn page<T, C>(
    mut rows: Vec<T>,
    limit: i64,
    cursor: impl FnOnce(&T) -> C,
) -> (Vec<T>, Option<C>) {
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next = rows.last().filter(|_| more).map(cursor);
    (rows, next)
}

/// Keyset pagination over `(time, id)`: the cursor is `{micros}_{uuid}` of the last item of the previous page.
pub mod cursor {
    use chrono::{DateTime, Utc};
    use uuid::Uuid;

    use crate::error::ApiError;

    /// Where the page starts: after `cursor`, or from the beginning.
    pub fn parse(cursor: Option<&str>) -> Result<(DateTime<Utc>, Uuid), ApiError> {
        let bad = || ApiError::unprocessable("cursor", "is not a cursor from this API");
        let Some(c) = cursor else {
            return Ok((DateTime::<Utc>::UNIX_EPOCH, Uuid::nil()));
        };
        let (t, id) = c.split_once('_').ok_or_else(bad)?;
        let micros: i64 = t.parse().map_err(|_| bad())?;
        Ok((
            DateTime::from_timestamp_micros(micros).ok_or_else(bad)?,
            id.parse().map_err(|_| bad())?,
        ))
    }

    pub fn format(at: DateTime<Utc>, id: Uuid) -> String {
        format!("{}_{id}", at.timestamp_micros())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(json: &str) -> JsonFault {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Row {
            id_number: String,
            result: Option<Colourless>,
        }
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        enum Colourless {
            Negative,
        }
        let mut de = serde_json::Deserializer::from_str(json);
        json_fault(
            serde_path_to_error::deserialize::<_, Row>(&mut de).expect_err(json),
            "row",
        )
    }

    #[test]
    fn a_fault_names_the_field_and_the_problem_but_never_the_value() {
        let cases = [
            (
                r#"{"id_number": 440106199001011234}"#,
                "id_number",
                "invalid type, expected a string",
            ),
            (
                r#"{"id_number": "x", "result": "440106199001011234"}"#,
                "result",
                "unknown variant, expected `Negative`",
            ),
            (
                r#"{"result": null}"#,
                "id_number",
                "missing field `id_number`",
            ),
        ];
        for (json, field, reason) in cases {
            assert_eq!(
                fault(json),
                JsonFault::Field {
                    field: field.into(),
                    reason: reason.into()
                },
                "{json}"
            );
        }
        assert!(
            matches!(fault(r#"{"id_number": "4401"#), JsonFault::Malformed(m) if !m.contains("4401"))
        );
    }
}
