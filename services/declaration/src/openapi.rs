//! `GET /openapi.json`, generated from the handlers' annotations.

use actix_web::HttpResponse;
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

pub async fn serve() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}
