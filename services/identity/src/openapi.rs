//! `GET /openapi.json`, generated from the handlers' annotations.

use actix_web::HttpResponse;
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

pub async fn serve() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}
