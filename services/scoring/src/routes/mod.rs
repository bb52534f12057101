pub(crate) mod appeals;
pub(crate) mod risk;
pub(crate) mod rules;
pub(crate) mod staff;
pub(crate) mod status;

use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/openapi.json", web::get().to(crate::openapi::serve))
        .service(
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
                .route("/regions/{code}/risk", web::put().to(risk::put))
                .route("/appeals", web::post().to(appeals::file))
                .route("/appeals", web::get().to(appeals::open))
                .route("/appeals/mine", web::get().to(appeals::mine))
                .route("/appeals/{id}/resolution", web::post().to(appeals::resolve)),
        );
}
