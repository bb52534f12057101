//! The citizen's page at `/`: static HTML, script and style compiled into the binary, the API addresses filled in
//! from settings at start, and a content security policy that lets the page talk to those APIs and nothing else.

use actix_web::{HttpResponse, web};
use hc_domain::RegionCode;

use crate::state::AppState;

const HTML: &str = include_str!("../../page/index.html");
const MAP_HTML: &str = include_str!("../../page/map.html");
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// The pages' scripts and styles, served as compiled in: (path, content type, body).
pub const ASSETS: [(&str, &str, &str); 4] = [
    ("/app.js", JS, include_str!("../../page/app.js")),
    ("/app.css", CSS, include_str!("../../page/app.css")),
    ("/map.js", JS, include_str!("../../page/map.js")),
    ("/map.css", CSS, include_str!("../../page/map.css")),
];

/// The citizen's page and the public county map with the API addresses in place, and their content security
/// policies.
pub struct Page {
    html: String,
    policy: String,
    map_html: String,
    map_policy: String,
}

/// An origin for an HTML attribute and a CSP source: only scheme, host and port characters pass.
fn origin(url: &str) -> String {
    url.trim_end_matches('/')
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || ":/.-[]".contains(*c))
        .collect()
}

impl Page {
    pub fn new(identity: &str, scoring: &str, declaration: &str, province: RegionCode) -> Self {
        let (identity, scoring, declaration) =
            (origin(identity), origin(scoring), origin(declaration));
        let html = HTML
            .replace("__IDENTITY_URL__", &identity)
            .replace("__SCORING_URL__", &scoring)
            .replace("__DECLARATION_URL__", &declaration);
        let policy = format!(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; \
             connect-src 'self' {identity} {scoring} {declaration}; base-uri 'none'; form-action 'none'; \
             frame-ancestors 'none'"
        );
        let map_html = MAP_HTML
            .replace("__SCORING_URL__", &scoring)
            .replace("__PROVINCE__", &province.to_string());
        // The map reads scoring's public map and nothing else, and draws its grid with SVG in the page.
        let map_policy = format!(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src {scoring_or_self}; \
             base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            scoring_or_self = if scoring.is_empty() {
                "'self'"
            } else {
                scoring.as_str()
            }
        );
        Self {
            html,
            policy,
            map_html,
            map_policy,
        }
    }
}

pub async fn index(state: web::Data<AppState>) -> HttpResponse {
    html(&state.page.policy, &state.page.html)
}

/// The public county map at `/map`.
pub async fn map(state: web::Data<AppState>) -> HttpResponse {
    html(&state.page.map_policy, &state.page.map_html)
}

fn html(policy: &str, body: &str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Content-Security-Policy", policy))
        .insert_header(("Cache-Control", "no-cache"))
        .body(body.to_owned())
}

pub fn asset(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(("Cache-Control", "no-cache"))
        .body(body)
}
