pub(crate) mod codes;
pub(crate) mod page;
pub(crate) mod trust;

use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    for (path, content_type, body) in page::ASSETS {
        cfg.route(
            path,
            web::get().to(move || async move { page::asset(content_type, body) }),
        );
    }
    cfg.route("/", web::get().to(page::index))
        .route("/map", web::get().to(page::map))
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
