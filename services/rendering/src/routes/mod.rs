pub(crate) mod codes;
pub(crate) mod page;
pub(crate) mod trust;

use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/openapi.json", web::get().to(crate::openapi::serve))
        .route("/", web::get().to(page::index))
        .route("/app.js", web::get().to(page::script))
        .route("/app.css", web::get().to(page::style))
        .route("/map", web::get().to(page::map))
        .route("/map.js", web::get().to(page::map_script))
        .route("/map.css", web::get().to(page::map_style))
        // Browsers ask for it; the page has none.
        .route(
            "/favicon.ico",
            web::get().to(actix_web::HttpResponse::NoContent),
        )
        .service(
            web::scope("/v1")
                .route("/codes/me", web::get().to(codes::mine))
                .route("/trust/keys", web::get().to(trust::keys)),
        );
}
