//! The OpenAPI document, generated from the handlers' annotations (the platform serves it at `GET /openapi.json`).

use hc_platform::openapi::BearerAuth;
use utoipa::OpenApi;

use crate::routes;

#[derive(OpenApi)]
#[openapi(
    info(title = "Health-code platform: declaration", description = "Daily declarations and official fact imports. Errors are application/problem+json (RFC 9457)."),
    paths(
        routes::declarations::submit, routes::declarations::history, routes::facts::mine,
        routes::imports::upload, routes::imports::status, routes::corrections::correct,
    ),
    components(schemas(hc_platform::error::Problem)),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;
