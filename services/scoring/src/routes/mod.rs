pub(crate) mod appeals;
pub(crate) mod county_map;
pub(crate) mod risk;
pub(crate) mod rules;
pub(crate) mod staff;
pub(crate) mod status;

use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/v1")
            .route("/rules/{region}", web::put().to(rules::put))
            .route("/rules/{region}", web::get().to(rules::get))
            .route("/rules/{region}/dry-run", web::post().to(rules::dry_run))
            .route("/status/me", web::get().to(status::mine))
            .route("/status/lookup", web::post().to(status::lookup))
            .route("/staff", web::put().to(staff::put))
            .route("/staff/colours", web::get().to(staff::colours))
            .route("/staff/me", web::get().to(staff::mine))
            .route("/staff/me/{employer_id}", web::put().to(staff::accept))
            .route("/regions/risk", web::get().to(risk::map))
            .route("/map", web::get().to(county_map::map))
            .route("/map/rules", web::get().to(county_map::rules))
            .route("/map/counties/{code}", web::get().to(county_map::county))
            .route(
                "/map/counties/{code}/override",
                web::put().to(county_map::set_override),
            )
            .route(
                "/map/counties/{code}/override/lift",
                web::post().to(county_map::lift_override),
            )
            .route("/regions/{code}/risk", web::put().to(risk::put))
            .route("/appeals", web::post().to(appeals::file))
            .route("/appeals", web::get().to(appeals::open))
            .route("/appeals/mine", web::get().to(appeals::mine))
            .route("/appeals/{id}/resolution", web::post().to(appeals::resolve)),
    );
}

/// The public maps' HTTP caching: an `ETag` that moves with every change, and 30 s in shared caches.
pub(crate) mod cached {
    use actix_web::http::header;
    use actix_web::{HttpRequest, HttpResponse, web::Bytes};

    pub const PUBLIC: (header::HeaderName, &str) = (header::CACHE_CONTROL, "public, max-age=30");

    /// A 304 when the client's `If-None-Match` names `etag`.
    pub fn unchanged(req: &HttpRequest, etag: &str) -> Option<HttpResponse> {
        req.headers()
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|t| t.trim() == etag))
            .then(|| {
                HttpResponse::NotModified()
                    .insert_header((header::ETAG, etag))
                    .insert_header(PUBLIC)
                    .finish()
            })
    }

    pub fn json(etag: &str, body: Bytes) -> HttpResponse {
        HttpResponse::Ok()
            .insert_header((header::ETAG, etag))
            .insert_header(PUBLIC)
            .content_type("application/json")
            .body(body)
    }
}
