//! Pieces every service's OpenAPI document shares.

use utoipa::Modify;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};

/// Declares the `bearer` security scheme (the identity service's EdDSA JWTs) that operations refer to, and gives
/// every operation that needs a token the two answers the token check itself can give (401: no valid token; 403: a
/// token of the wrong kind or without the scope), so that no handler has to remember to document them.
pub struct BearerAuth;

fn problem(description: &str) -> RefOr<utoipa::openapi::Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/problem+json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .build(),
            )
            .build(),
    )
}

fn document_token_answers(op: &mut Operation) {
    if op.security.as_ref().is_none_or(|s| s.is_empty()) {
        return;
    }
    let answers = &mut op.responses.responses;
    answers.entry("401".into()).or_insert_with(|| {
        problem(
            "No valid token: missing, malformed, expired, revoked or not signed by a trusted key",
        )
    });
    answers.entry("403".into()).or_insert_with(|| {
        problem("The token is of the wrong kind (citizen or client) or lacks the scope")
    });
}

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        for item in openapi.paths.paths.values_mut() {
            for op in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                document_token_answers(op);
            }
        }
    }
}
