//! `GET /openapi.json`, generated from the handlers' annotations.

use actix_web::HttpResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

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
