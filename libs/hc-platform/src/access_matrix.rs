//! The authorization matrix, generated from a service's own route table (its OpenAPI document): every operation
//! that needs a token is called without one, with a forged and an expired one, with a citizen's, with an official
//! client's that lacks its scopes, and with one of another region, and each answer is checked against what the
//! operation must say and against the statuses it documents. Test support only.

use reqwest::{Method, StatusCode};
use serde_json::Value;

/// The callers the matrix tries, as access tokens.
pub struct Callers {
    /// Signed by a key the platform does not trust (the claims otherwise valid).
    pub foreign_key: String,
    /// Signed by the platform's key, expired.
    pub expired: String,
    /// A signed-in citizen.
    pub citizen: String,
    /// An official client holding only a scope no operation asks for.
    pub wrong_scope: String,
    /// An official client holding every scope, bound to a region far from the test data (Urumqi, 650100).
    pub other_region: String,
}

/// One operation of the route table.
#[derive(Debug, Clone)]
pub struct Operation {
    pub method: Method,
    pub path: String,
    /// The scopes it asks for (empty: any valid token of the right kind), `None` when it needs no token.
    pub scopes: Option<Vec<String>>,
    pub documented: Vec<u16>,
}

/// The operations of an OpenAPI document.
pub fn operations(doc: &Value) -> Vec<Operation> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for (method, op) in item.as_object().into_iter().flatten() {
            let Ok(method) = method.to_uppercase().parse::<Method>() else {
                continue;
            };
            let scopes = op["security"].as_array().and_then(|s| s.first()).map(|s| {
                s["bearer"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            });
            let documented = op["responses"]
                .as_object()
                .into_iter()
                .flatten()
                .filter_map(|(code, _)| code.parse().ok())
                .collect();
            ops.push(Operation {
                method: method.clone(),
                path: path.clone(),
                scopes,
                documented,
            });
        }
    }
    ops
}

/// A concrete URL path for a templated one: regions and codes as a county, ID numbers as a valid one, anything
/// else as a UUID (every id in the platform is one, or a free string).
fn concrete(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..].find('}').map_or(rest.len(), |c| open + c);
        let name = &rest[open + 1..close];
        out.push_str(match name {
            n if n.contains("region") || n == "code" => "440106",
            n if n.contains("id_number") => "440106199003070036",
            "kind" => "cases",
            _ => "6f1b8c2e-3a4d-4e5f-9a0b-1c2d3e4f5a6b",
        });
        rest = &rest[(close + 1).min(rest.len())..];
    }
    out.push_str(rest);
    out
}

/// Calls every operation of the service at `address` as each caller and returns what broke the rules, one line
/// each (empty: the matrix holds).
pub async fn check(http: &reqwest::Client, address: &str, callers: &Callers) -> Vec<String> {
    let doc: Value = http
        .get(format!("{address}/openapi.json"))
        .send()
        .await
        .expect("openapi")
        .json()
        .await
        .expect("openapi json");
    let mut broken = Vec::new();
    let mut checked = 0;
    for op in operations(&doc) {
        let Some(scopes) = &op.scopes else {
            continue;
        };
        checked += 1;
        let mut cases: Vec<(&str, Option<&str>, Vec<u16>)> = vec![
            ("no token", None, vec![401]),
            (
                "a token of a foreign key",
                Some(&callers.foreign_key),
                vec![401],
            ),
            ("an expired token", Some(&callers.expired), vec![401]),
        ];
        if !scopes.is_empty() {
            cases.push(("a citizen's token", Some(&callers.citizen), vec![403]));
            cases.push((
                "a token without the scope",
                Some(&callers.wrong_scope),
                vec![403],
            ));
            // Another region's official holds the scope: refused, not found, or a valid answer that shows nothing
            // of this region (a list filtered to its own), as the operation documents.
            cases.push((
                "a token of another region",
                Some(&callers.other_region),
                vec![],
            ));
        }
        let url = format!("{address}{}", concrete(&op.path));
        for (who, token, expected) in cases {
            let mut request = http.request(op.method.clone(), &url);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            if [Method::POST, Method::PUT, Method::PATCH].contains(&op.method) {
                request = request.json(&serde_json::json!({}));
            }
            let status = request.send().await.expect("request").status();
            let line = format!("{} {} with {who}: {status}", op.method, op.path);
            if !expected.is_empty() && !expected.contains(&status.as_u16()) {
                broken.push(format!("{line}, expected {expected:?}"));
            } else if status.is_server_error() {
                broken.push(format!("{line}, a server error"));
            } else if !op.documented.contains(&status.as_u16())
                && status != StatusCode::NOT_MODIFIED
            {
                broken.push(format!("{line}, not in its documented {:?}", op.documented));
            }
        }
    }
    assert!(
        checked > 0,
        "{address} documents no operation that needs a token"
    );
    broken
}

/// [`check`], failing with every rule broken.
pub async fn assert_holds(http: &reqwest::Client, address: &str, callers: &Callers) {
    let broken = check(http, address, callers).await;
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templated_paths_get_values_of_their_kind() {
        assert_eq!(
            concrete("/v1/regions/{code}/risk"),
            "/v1/regions/440106/risk"
        );
        assert_eq!(
            concrete("/v1/persons/by-id-number/{id_number}"),
            "/v1/persons/by-id-number/440106199003070036"
        );
        assert_eq!(
            concrete("/v1/clients/{id}"),
            "/v1/clients/6f1b8c2e-3a4d-4e5f-9a0b-1c2d3e4f5a6b"
        );
    }
}
