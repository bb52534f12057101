pub(crate) mod checkins;
pub(crate) mod trust;
pub(crate) mod venues;
pub(crate) mod verify;

use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/v1")
            .route("/verify", web::post().to(verify::verify))
            .route("/venues/{id}", web::put().to(venues::put))
            .route("/venues/{id}", web::get().to(venues::get))
            .route("/venues/{id}/code", web::get().to(venues::code))
            .route("/venues/{id}/visits", web::get().to(venues::visits))
            .route("/checkins", web::post().to(checkins::checkin))
            .route("/checkins/exposure", web::get().to(checkins::exposure))
            .route("/trust/list", web::get().to(trust::list))
            .route("/trust/root", web::get().to(trust::root))
            .route("/trust/peers/{region}", web::put().to(trust::import_peer))
            .service(
                web::resource("/trust/dcc-signers")
                    .app_data(web::PayloadConfig::new(trust::MAX_DCC_SIGNERS_BODY))
                    .route(web::get().to(trust::dcc_signers))
                    .route(web::put().to(trust::put_dcc_signers)),
            ),
    );
}
