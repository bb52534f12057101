//! The OpenAPI document, generated from the handlers' annotations (the platform serves it at `GET /openapi.json`).

use hc_platform::openapi::BearerAuth;
use utoipa::OpenApi;

use crate::routes;

#[derive(OpenApi)]
#[openapi(
    info(title = "Health-code platform: scoring", description = "Rules as data, explained colours, region risk and appeals. Errors are application/problem+json (RFC 9457)."),
    paths(
        routes::rules::put, routes::rules::get, routes::rules::dry_run,
        routes::status::mine, routes::status::lookup, routes::staff::put, routes::staff::colours, routes::staff::mine, routes::staff::accept,
        routes::risk::put, routes::risk::map,
        routes::county_map::map, routes::county_map::rules, routes::county_map::county, routes::county_map::set_override, routes::county_map::lift_override,
        routes::appeals::file, routes::appeals::mine, routes::appeals::open, routes::appeals::resolve,
    ),
    components(schemas(hc_platform::error::Problem)),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;
