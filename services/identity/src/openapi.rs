//! The OpenAPI document, generated from the handlers' annotations (the platform serves it at `GET /openapi.json`).

use hc_platform::openapi::BearerAuth;
use utoipa::OpenApi;

use crate::routes;

#[derive(OpenApi)]
#[openapi(
    info(title = "Health-code platform: identity", description = "Registration, sign-in, API clients and signing keys. Errors are application/problem+json (RFC 9457)."),
    paths(
        routes::persons::register, routes::persons::me, routes::persons::by_id_number,
        routes::auth::request_otp, routes::auth::token, routes::keys::jwks,
        routes::clients::create, routes::clients::list, routes::clients::revoke,
    ),
    components(schemas(hc_platform::error::Problem)),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;
