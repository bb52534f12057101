pub(crate) mod codes;
pub(crate) mod trust;

use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/openapi.json", web::get().to(crate::openapi::serve))
        .service(
            web::scope("/v1")
                .route("/codes/me", web::get().to(codes::mine))
                .route("/trust/keys", web::get().to(trust::keys)),
        );
}
