//! The OpenAPI document, generated from the handlers' annotations (the platform serves it at `GET /openapi.json`).

use hc_platform::openapi::BearerAuth;
use utoipa::OpenApi;

use crate::routes;

#[derive(OpenApi)]
#[openapi(
    info(title = "Health-code platform: rendering", description = "The signed code of a citizen's current status (docs/token-format.md), as a QR code or its payload, and the keys that verify it. Errors are application/problem+json (RFC 9457)."),
    paths(routes::codes::mine, routes::trust::keys),
    components(schemas(hc_platform::error::Problem)),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;
