use actix_web::{HttpResponse, web};

use crate::state::AppState;

/// The public signing keys (JWKS). Public: every service and other platforms fetch it to verify tokens.
#[utoipa::path(get, path = "/v1/auth/keys", tag = "auth",
    responses((status = 200, description = "JSON Web Key Set of the Ed25519 signing keys", content_type = "application/json")))]
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=300"))
        .json(state.keys.jwks())
}
