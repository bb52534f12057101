pub(crate) mod auth;
pub(crate) mod clients;
pub(crate) mod keys;
pub(crate) mod persons;

use actix_web::web;
use hc_domain::InvalidValue;
use hc_platform::ApiError;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/v1")
            .route("/persons", web::post().to(persons::register))
            .route("/persons/me", web::get().to(persons::me))
            .route(
                "/persons/by-id-number/{id_number}",
                web::get().to(persons::by_id_number),
            )
            .route("/auth/otp", web::post().to(auth::request_otp))
            .route("/auth/token", web::post().to(auth::token))
            .route("/auth/keys", web::get().to(keys::jwks))
            .route("/clients", web::post().to(clients::create))
            .route("/clients", web::get().to(clients::list))
            .route("/clients/{id}", web::delete().to(clients::revoke)),
    );
}

/// Turns a domain parse error into a 422 naming the request field.
fn invalid(field: &'static str) -> impl Fn(InvalidValue) -> ApiError {
    move |err| ApiError::unprocessable(field, err.reason)
}

/// A provider that did not answer is a 503: the request may be tried again, and the cause is logged, not shown.
fn provider_down(what: &'static str) -> impl Fn(anyhow::Error) -> ApiError {
    move |err| {
        tracing::warn!(error = %err, "{what} failed");
        ApiError::Unavailable {
            what,
            retry_after: 5,
        }
    }
}
