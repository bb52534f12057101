//! The one error type at the HTTP boundary, rendered as `application/problem+json` (RFC 9457).
//! Client errors say what is wrong and with which field; internal errors answer an opaque 500 and log the
//! whole cause chain.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{detail}")]
    BadRequest { detail: String },
    #[error("{field}: {reason}")]
    Unprocessable { field: String, reason: String },
    #[error("{detail}")]
    Unauthorized { detail: String },
    #[error("{detail}")]
    Forbidden { detail: String },
    #[error("{what} not found")]
    NotFound { what: &'static str },
    #[error("this route does not answer {method}")]
    MethodNotAllowed {
        method: String,
        /// The methods it does answer (the `Allow` header).
        allow: String,
    },
    #[error("{detail}")]
    Conflict {
        field: Option<String>,
        detail: String,
    },
    /// A 409 that passes: the same request (its idempotency key, its batch) is still being done by another try.
    /// Answered with `Retry-After`, so that a client whose first try was cut off comes back for the outcome.
    #[error("{detail}")]
    InProgress {
        field: Option<String>,
        detail: String,
        retry_after: u64,
    },
    #[error("{detail}")]
    PayloadTooLarge { detail: String },
    #[error("{detail}")]
    UnsupportedMediaType { detail: String },
    #[error("too many requests")]
    TooManyRequests { retry_after: u64 },
    #[error("overloaded")]
    Overloaded { retry_after: u64 },
    #[error("{what} is unavailable")]
    Unavailable {
        what: &'static str,
        retry_after: u64,
    },
    #[error("request timed out")]
    Timeout,
    #[error(transparent)]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error(transparent)]
    Postgres(#[from] tokio_postgres::Error),
    #[error(transparent)]
    Redis(#[from] redis::RedisError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn unprocessable(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ApiError::Unprocessable {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        ApiError::Unauthorized {
            detail: detail.into(),
        }
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        ApiError::Forbidden {
            detail: detail.into(),
        }
    }

    /// Redis cannot serve now (`store::is_unavailable`), met directly or inside an error of our own code (the
    /// one-time codes' helpers wrap theirs in `anyhow`).
    fn redis_unavailable(&self) -> bool {
        match self {
            ApiError::Redis(e) => crate::store::is_unavailable(e),
            ApiError::Internal(e) => e.chain().any(|cause| {
                cause
                    .downcast_ref::<redis::RedisError>()
                    .is_some_and(crate::store::is_unavailable)
            }),
            _ => false,
        }
    }

    fn slug_and_title(&self) -> (&'static str, &'static str) {
        match self {
            ApiError::BadRequest { .. } => ("bad-request", "Bad request"),
            ApiError::Unprocessable { .. } => ("invalid-field", "A field is invalid"),
            ApiError::Unauthorized { .. } => ("unauthorized", "Authentication required"),
            ApiError::Forbidden { .. } => ("forbidden", "Not allowed"),
            ApiError::NotFound { .. } => ("not-found", "Not found"),
            ApiError::MethodNotAllowed { .. } => ("method-not-allowed", "Method not allowed"),
            ApiError::Conflict { .. } => ("conflict", "Conflict"),
            ApiError::InProgress { .. } => ("in-progress", "Still in progress, retry later"),
            ApiError::PayloadTooLarge { .. } => ("payload-too-large", "Payload too large"),
            ApiError::UnsupportedMediaType { .. } => {
                ("unsupported-media-type", "Unsupported media type")
            }
            ApiError::TooManyRequests { .. } => ("rate-limited", "Too many requests"),
            ApiError::Overloaded { .. } => ("overloaded", "Service overloaded, retry later"),
            ApiError::Unavailable { .. } => ("unavailable", "A dependency is unavailable"),
            ApiError::Timeout => ("timeout", "Request timed out"),
            ApiError::Pool(deadpool_postgres::PoolError::Timeout(_)) => {
                ("unavailable", "Database busy, retry later")
            }
            _ if self.redis_unavailable() => ("unavailable", "A dependency is unavailable"),
            ApiError::Pool(_)
            | ApiError::Postgres(_)
            | ApiError::Redis(_)
            | ApiError::Internal(_) => ("internal", "Internal error"),
        }
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            ApiError::TooManyRequests { retry_after }
            | ApiError::Overloaded { retry_after }
            | ApiError::Unavailable { retry_after, .. }
            | ApiError::InProgress { retry_after, .. } => Some(*retry_after),
            ApiError::Timeout | ApiError::Pool(deadpool_postgres::PoolError::Timeout(_)) => Some(1),
            _ if self.redis_unavailable() => Some(1),
            _ => None,
        }
    }
}

/// The problem+json body. `field` and `errors` are extension members naming what to fix.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI reference naming the kind of problem, e.g. `/problems/invalid-field`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The request field at fault, for validation errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict { .. } | ApiError::InProgress { .. } => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Overloaded { .. } | ApiError::Unavailable { .. } | ApiError::Timeout => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Pool(deadpool_postgres::PoolError::Timeout(_)) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            // Redis slow or down, for a request with no way around it (a one-time code lives there only): the
            // client comes back, as from a shed request. A 500 had the pages retry at once, without Retry-After.
            _ if self.redis_unavailable() => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Pool(_)
            | ApiError::Postgres(_)
            | ApiError::Redis(_)
            | ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let (slug, title) = self.slug_and_title();
        let internal =
            status.is_server_error() && !matches!(status, StatusCode::SERVICE_UNAVAILABLE);
        if internal {
            // The cause chain goes to the log only; the body stays opaque.
            tracing::error!(error = ?anyhow::Error::msg(format!("{self:#}")), "internal error");
        }
        let problem = Problem {
            kind: format!("/problems/{slug}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: (!internal).then(|| {
                if self.redis_unavailable() {
                    // Not the client's error text: it names the address that did not answer.
                    "Redis cannot serve now".to_owned()
                } else {
                    self.to_string()
                }
            }),
            field: match self {
                ApiError::Unprocessable { field, .. } => Some(field.clone()),
                ApiError::Conflict { field, .. } | ApiError::InProgress { field, .. } => {
                    field.clone()
                }
                _ => None,
            },
        };
        let mut response = HttpResponse::build(status);
        response.insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        ));
        if let ApiError::MethodNotAllowed { allow, .. } = self
            && let Ok(value) = HeaderValue::from_str(allow)
        {
            response.insert_header((header::ALLOW, value));
        }
        if matches!(self, ApiError::Unauthorized { .. }) {
            response.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
        }
        if matches!(
            self,
            ApiError::Pool(deadpool_postgres::PoolError::Timeout(_))
        ) {
            // A request that waited its limit for a database connection: the pool, not the CPU, was the bottleneck.
            metrics::counter!("http_requests_shed_total", "reason" => "pool_wait").increment(1);
        }
        if let Some(seconds) = self.retry_after() {
            response.insert_header((header::RETRY_AFTER, seconds.to_string()));
        }
        response.body(serde_json::to_vec(&problem).unwrap_or_default())
    }
}

/// Maps a unique-constraint violation to `Conflict` by constraint name, so handlers never inspect SQL states.
pub trait ConflictOnUnique<T> {
    /// `constraints` pairs a constraint name with the request field it protects and the message to show.
    fn conflict_on(self, constraints: &[(&str, &str, &str)]) -> Result<T, ApiError>;
}

impl<T> ConflictOnUnique<T> for Result<T, tokio_postgres::Error> {
    fn conflict_on(self, constraints: &[(&str, &str, &str)]) -> Result<T, ApiError> {
        self.map_err(|err| {
            let hit = err
                .as_db_error()
                .filter(|db| *db.code() == tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
                .and_then(|db| db.constraint())
                .and_then(|name| constraints.iter().find(|(c, _, _)| *c == name));
            match hit {
                Some((_, field, detail)) => ApiError::Conflict {
                    field: Some((*field).to_owned()),
                    detail: (*detail).to_owned(),
                },
                None => ApiError::Postgres(err),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::to_bytes;

    async fn body_of(err: ApiError) -> (StatusCode, serde_json::Value, Option<String>) {
        let response = err.error_response();
        let status = response.status();
        let retry = response
            .headers()
            .get(header::RETRY_AFTER)
            .map(|v| v.to_str().unwrap_or("").to_owned());
        let ctype = response.headers().get(header::CONTENT_TYPE).cloned();
        assert_eq!(
            ctype.as_ref().map(|v| v.to_str().unwrap_or("")),
            Some("application/problem+json")
        );
        let bytes = to_bytes(response.into_body()).await.unwrap_or_default();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or_default(),
            retry,
        )
    }

    #[actix_web::test]
    async fn validation_errors_name_the_field() {
        let (status, body, _) = body_of(ApiError::unprocessable(
            "id_number",
            "check character does not match",
        ))
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["field"], "id_number");
        assert_eq!(body["type"], "/problems/invalid-field");
        assert!(
            body["detail"]
                .as_str()
                .unwrap_or("")
                .contains("check character")
        );
    }

    #[actix_web::test]
    async fn internal_errors_hide_their_cause() {
        let (status, body, _) = body_of(ApiError::Internal(anyhow::anyhow!(
            "password=hunter2 leaked"
        )))
        .await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!body.to_string().contains("hunter2"));
    }

    #[actix_web::test]
    async fn redis_not_answering_is_a_503_to_retry_and_its_other_errors_a_500() {
        let timed_out: redis::RedisError =
            std::io::Error::from(std::io::ErrorKind::TimedOut).into();
        let (status, body, retry) = body_of(ApiError::Redis(timed_out)).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(retry.as_deref(), Some("1"));
        assert_eq!(body["type"], "/problems/unavailable");
        let refused: redis::RedisError =
            std::io::Error::from(std::io::ErrorKind::ConnectionRefused).into();
        assert_eq!(
            body_of(ApiError::Redis(refused)).await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        let wrapped = anyhow::Error::from(redis::RedisError::from(std::io::Error::from(
            std::io::ErrorKind::TimedOut,
        )))
        .context("issuing a one-time code");
        let (status, body, _) = body_of(ApiError::Internal(wrapped)).await;
        assert_eq!(
            status,
            StatusCode::SERVICE_UNAVAILABLE,
            "inside our own error too"
        );
        assert_eq!(body["detail"], "Redis cannot serve now");
        let loading: redis::RedisError = (
            redis::ErrorKind::Server(redis::ServerErrorKind::BusyLoading),
            "LOADING",
        )
            .into();
        assert_eq!(
            body_of(ApiError::Redis(loading)).await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        let wrong_type: redis::RedisError = (
            redis::ErrorKind::Server(redis::ServerErrorKind::ResponseError),
            "WRONGTYPE",
        )
            .into();
        let (status, _, retry) = body_of(ApiError::Redis(wrong_type)).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(retry, None);
    }

    #[actix_web::test]
    async fn overload_says_when_to_retry() {
        let (status, _, retry) = body_of(ApiError::Overloaded { retry_after: 2 }).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(retry.as_deref(), Some("2"));
    }
}
