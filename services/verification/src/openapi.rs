//! The OpenAPI document, generated from the handlers' annotations (the platform serves it at `GET /openapi.json`).

use hc_platform::openapi::BearerAuth;
use utoipa::OpenApi;

use crate::routes;

#[derive(OpenApi)]
#[openapi(
    info(title = "Health-code platform: verification", description = "Checkpoints verify codes and ID cards against venue policies; venue check-ins; contact tracing; trust lists for mutual recognition. Errors are application/problem+json (RFC 9457)."),
    paths(
        routes::verify::verify,
        routes::venues::put, routes::venues::get, routes::venues::code, routes::venues::visits,
        routes::checkins::checkin, routes::checkins::exposure,
        routes::trust::list, routes::trust::root, routes::trust::import_peer,
        routes::trust::dcc_signers, routes::trust::put_dcc_signers,
    ),
    components(schemas(hc_platform::error::Problem)),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;
