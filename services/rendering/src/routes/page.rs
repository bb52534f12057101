//! The citizen's page at `/`: static HTML, script and style compiled into the binary, the API addresses filled in
//! from settings at start, and a content security policy that lets the page talk to those APIs and nothing else.

use actix_web::{HttpResponse, web};
use hc_domain::RegionCode;

use crate::state::AppState;

const HTML: &str = include_str!("../../page/index.html");
const SCRIPT: &str = include_str!("../../page/app.js");
const STYLE: &str = include_str!("../../page/app.css");
const MAP_HTML: &str = include_str!("../../page/map.html");
const MAP_SCRIPT: &str = include_str!("../../page/map.js");
const MAP_STYLE: &str = include_str!("../../page/map.css");

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
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Content-Security-Policy", state.page.policy.as_str()))
        .insert_header(("Cache-Control", "no-cache"))
        .body(state.page.html.clone())
}

pub async fn script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header(("Cache-Control", "no-cache"))
        .body(SCRIPT)
}

pub async fn style() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header(("Cache-Control", "no-cache"))
        .body(STYLE)
}

/// The public county map at `/map`.
pub async fn map(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Content-Security-Policy", state.page.map_policy.as_str()))
        .insert_header(("Cache-Control", "no-cache"))
        .body(state.page.map_html.clone())
}

pub async fn map_script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header(("Cache-Control", "no-cache"))
        .body(MAP_SCRIPT)
}

pub async fn map_style() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header(("Cache-Control", "no-cache"))
        .body(MAP_STYLE)
}
