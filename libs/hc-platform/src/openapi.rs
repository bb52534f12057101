//! Pieces every service's OpenAPI document shares.

use utoipa::Modify;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};

/// Declares the `bearer` security scheme (the identity service's EdDSA JWTs) that operations refer to, and gives
/// every operation that needs a token the two answers the token check itself can give (401: no valid token; 403: a
/// token of the wrong kind or without the scope), and every operation the platform's own answers to a bad body or
/// parameter, so that no handler has to remember to document them.
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

/// The answers the platform itself gives before a handler runs, documented on every operation they can reach: a body
/// that is not JSON (415), too large (413) or not well-formed (400); a path or query parameter of the wrong shape
/// (422, naming it).
fn document_platform_answers(op: &mut Operation) {
    let answers = &mut op.responses.responses;
    // A Problem is always served as application/problem+json, whatever content type an annotation left it under.
    for answer in answers.values_mut() {
        if let RefOr::T(response) = answer
            && let Some(content) = response.content.shift_remove("application/json")
        {
            let is_problem = matches!(&content.schema, Some(RefOr::Ref(r)) if r.ref_location.ends_with("/Problem"));
            let kind = if is_problem {
                "application/problem+json"
            } else {
                "application/json"
            };
            response.content.insert(kind.to_owned(), content);
        }
    }
    if op.request_body.is_some() {
        for (status, description) in [
            ("400", "The body is not well-formed JSON"),
            ("413", "The body is larger than the service takes"),
            ("415", "The body is not of the documented content type"),
        ] {
            answers
                .entry(status.into())
                .or_insert_with(|| problem(description));
        }
    }
    if op.parameters.as_ref().is_some_and(|p| !p.is_empty()) {
        answers
            .entry("422".into())
            .or_insert_with(|| problem("A parameter or field is invalid; `field` names it"));
    }
    // Any request may be shed (admission), cut at the request timeout, or meet PostgreSQL or Redis unavailable.
    answers.entry("503".into()).or_insert_with(|| {
        problem(
            "Overloaded, timed out, or a dependency is unavailable: retry after Retry-After. A write cut off by the \
             request timeout may have been done; retry it with the same Idempotency-Key",
        )
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
                document_platform_answers(op);
            }
        }
    }
}

/// What the platform needs to know of a service's routes, from its OpenAPI document (whose paths are the server's
/// route patterns, distinct by more than their parameters' names, as OpenAPI requires).
#[derive(Debug, Default)]
pub struct Routes {
    /// The methods each path answers, as an `Allow` header value ("GET, PUT").
    pub allow: std::collections::HashMap<String, String>,
    /// The operations (method, path) that need no token.
    pub public: std::collections::HashSet<(String, String)>,
    /// The document itself, served at `GET /openapi.json`.
    pub document: String,
}

impl Routes {
    pub fn of(doc: &utoipa::openapi::OpenApi) -> Self {
        let mut routes = Routes {
            document: serde_json::to_string(doc).expect("an OpenAPI document serializes"),
            ..Routes::default()
        };
        for (path, item) in &doc.paths.paths {
            let mut answered = Vec::new();
            for (name, op) in [
                ("GET", &item.get),
                ("PUT", &item.put),
                ("POST", &item.post),
                ("DELETE", &item.delete),
                ("PATCH", &item.patch),
            ] {
                let Some(op) = op else { continue };
                answered.push(name);
                if op.security.as_ref().is_none_or(|s| s.is_empty()) {
                    routes.public.insert((name.to_owned(), path.clone()));
                }
            }
            routes.allow.insert(path.clone(), answered.join(", "));
        }
        routes
    }

    /// Whether the operation `method` `pattern` is documented as needing no token.
    pub fn is_public(&self, method: &str, pattern: &str) -> bool {
        self.public
            .contains(&(method.to_owned(), pattern.to_owned()))
    }
}
