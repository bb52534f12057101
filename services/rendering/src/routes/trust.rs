//! `GET /v1/trust/keys`: the public keys this platform signs codes with (public, cacheable).

use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::keys::PublishedKey;
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct TrustKeys {
    /// This platform's region code: the `iss` of its codes.
    pub issuer: String,
    /// The signing key first, then retired keys whose codes may still be valid.
    pub keys: Vec<PublishedKey>,
}

#[utoipa::path(get, path = "/v1/trust/keys", tag = "trust",
    responses((status = 200, description = "The public keys of this issuer, as OKP JWKs with the issuer", body = TrustKeys)))]
pub async fn keys(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        // A new key is added here before it signs (see config/default.toml), so five minutes of caching is safe.
        .insert_header(("Cache-Control", "public, max-age=300"))
        .json(TrustKeys {
            issuer: state.keys.signer.issuer().to_owned(),
            keys: state
                .keys
                .published
                .iter()
                .map(PublishedKey::from)
                .collect(),
        })
}
