pub(crate) mod corrections;
pub(crate) mod declarations;
pub(crate) mod facts;
pub(crate) mod imports;

use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/v1")
            .route("/declarations", web::post().to(declarations::submit))
            .route("/declarations", web::get().to(declarations::history))
            .route("/facts/me", web::get().to(facts::mine))
            .route("/facts/corrections", web::post().to(corrections::correct))
            // One resource: POST names a kind, GET a batch id (two patterns of the same shape would shadow).
            .service(
                web::resource("/imports/{id}")
                    .route(web::post().to(imports::upload))
                    .route(web::get().to(imports::status)),
            ),
    );
}
