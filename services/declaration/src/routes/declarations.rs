use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{NaiveDate, Utc};
use hc_domain::{RegionCode, Temperature};
use hc_platform::ApiError;
use hc_platform::auth::Citizen;
use hc_platform::events::DeclarationSubmitted;
use hc_platform::http::{Json, cursor, idempotency_key};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

pub use crate::db::declarations::DeclarationView;
use crate::db::declarations::{self as db, NewDeclaration};
use crate::state::AppState;
use hc_domain::china_time;

/// The symptoms a citizen can declare (a closed list).
pub const SYMPTOMS: &[&str] = &[
    "fever",
    "cough",
    "fatigue",
    "sore_throat",
    "loss_of_smell_or_taste",
    "diarrhoea",
    "shortness_of_breath",
];

#[derive(Debug, Deserialize, ToSchema)]
pub struct DeclarationRequest {
    /// GB/T 2260 code of where the citizen is now.
    #[schema(example = "440106")]
    pub current_region: String,
    /// Body temperature in °C, 35.0 to 42.0.
    #[schema(example = 36.6)]
    pub temperature: f64,
    #[schema(example = json!([]))]
    pub symptoms: Vec<String>,
    pub contact_with_case: bool,
    /// Required when `contact_with_case` is true; not in the future.
    pub contact_date: Option<NaiveDate>,
    /// Regions travelled in the last 14 days.
    #[serde(default)]
    pub travelled_regions: Vec<String>,
    /// The electronic commitment that the declaration is true: must be `true`.
    pub commitment: bool,
}

struct Valid {
    region: RegionCode,
    temperature: Temperature,
    symptoms: Vec<String>,
    contact_date: Option<NaiveDate>,
    travelled: Vec<String>,
}

fn validate(body: &DeclarationRequest, today: NaiveDate) -> Result<Valid, ApiError> {
    let region = RegionCode::parse(&body.current_region)
        .map_err(|e| ApiError::unprocessable("current_region", e.reason))?;
    let temperature = Temperature::parse(body.temperature)
        .map_err(|e| ApiError::unprocessable("temperature", e.reason))?;
    let mut symptoms = Vec::with_capacity(body.symptoms.len());
    for (i, s) in body.symptoms.iter().enumerate() {
        if !SYMPTOMS.contains(&s.as_str()) {
            return Err(ApiError::unprocessable(
                format!("symptoms[{i}]"),
                format!("must be one of {}", SYMPTOMS.join(", ")),
            ));
        }
        if !symptoms.contains(s) {
            symptoms.push(s.clone());
        }
    }
    let contact_date = match (body.contact_with_case, body.contact_date) {
        (true, None) => {
            return Err(ApiError::unprocessable(
                "contact_date",
                "is required when contact_with_case is true",
            ));
        }
        (true, Some(date)) if date > today => {
            return Err(ApiError::unprocessable("contact_date", "is in the future"));
        }
        (true, Some(date)) => Some(date),
        (false, _) => None,
    };
    if body.travelled_regions.len() > 100 {
        return Err(ApiError::unprocessable(
            "travelled_regions",
            "at most 100 regions",
        ));
    }
    let mut travelled = Vec::with_capacity(body.travelled_regions.len());
    for (i, r) in body.travelled_regions.iter().enumerate() {
        let code = RegionCode::parse(r)
            .map_err(|e| ApiError::unprocessable(format!("travelled_regions[{i}]"), e.reason))?;
        travelled.push(code.to_string());
    }
    if !body.commitment {
        return Err(ApiError::unprocessable(
            "commitment",
            "the declaration must be committed to as true",
        ));
    }
    Ok(Valid {
        region,
        temperature,
        symptoms,
        contact_date,
        travelled,
    })
}

/// Submit today's declaration. A second one the same day (Asia/Shanghai) supersedes the first; both stay in the
/// history. A retry with the same `Idempotency-Key` returns the first answer.
#[utoipa::path(post, path = "/v1/declarations", tag = "declarations", request_body = DeclarationRequest, security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "A retry with the same key returns the first answer")),
    responses(
        (status = 201, description = "Declared", body = DeclarationView),
        (status = 401, description = "No valid citizen token", body = hc_platform::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is invalid; `field` names it", body = hc_platform::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn submit(
    state: web::Data<AppState>,
    Citizen(person): Citizen,
    req: HttpRequest,
    Json(body): Json<DeclarationRequest>,
) -> Result<HttpResponse, ApiError> {
    let now = Utc::now();
    let today = china_time::day_of(now);
    let valid = validate(&body, today)?;
    let key = idempotency_key(&req)?;
    let mut client = state.db.get().await?;
    let tx = client.transaction().await?;
    db::lock_person(&tx, person.0).await?;
    if let Some(key) = &key
        && let Some(first) = db::by_idempotency_key(&tx, person.0, key).await?
    {
        return Ok(HttpResponse::Created().json(first));
    }
    let supersedes = db::supersede(&tx, person.0, today).await?;
    let mut stored = db::insert(
        &tx,
        &NewDeclaration {
            id: Uuid::new_v4(),
            person: person.0,
            day: today,
            current_region: &valid.region.to_string(),
            temperature_tenths: (valid.temperature.celsius() * 10.0).round() as i16,
            symptoms: &valid.symptoms,
            contact_with_case: body.contact_with_case,
            contact_date: valid.contact_date,
            travelled_regions: &valid.travelled,
            idempotency_key: key.as_deref(),
        },
    )
    .await?;
    let event = DeclarationSubmitted {
        declaration_id: stored.id,
        person_id: person.0,
        day: stored.day,
        current_region: stored.current_region.clone(),
        fever: valid.temperature.is_fever(),
        symptoms: stored.symptoms.clone(),
        contact_with_case: stored.contact_with_case,
        contact_date: stored.contact_date,
        travelled_regions: stored.travelled_regions.clone(),
        supersedes,
    };
    hc_platform::outbox::enqueue(&tx, DeclarationSubmitted::STREAM, &event.encode()).await?;
    tx.commit().await?;
    stored.supersedes = supersedes;
    Ok(HttpResponse::Created().json(stored))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeclarationPage {
    pub items: Vec<DeclarationView>,
    pub next_cursor: Option<String>,
}

/// The citizen's own declarations, newest first.
#[utoipa::path(get, path = "/v1/declarations", tag = "declarations", security(("bearer" = [])), params(HistoryQuery),
    responses(
        (status = 200, description = "One page", body = DeclarationPage),
        (status = 422, description = "Invalid limit or cursor", body = hc_platform::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn history(
    state: web::Data<AppState>,
    Citizen(person): Citizen,
    query: web::Query<HistoryQuery>,
) -> Result<web::Json<DeclarationPage>, ApiError> {
    let limit = hc_platform::http::page_limit(query.limit, 20, 100)?;
    let before = (query.cursor.as_deref())
        .map(|c| cursor::parse(Some(c)))
        .transpose()
        .map_err(|_| ApiError::unprocessable("cursor", "is not a cursor this endpoint returned"))?;
    let client = state.db.get().await?;
    let rows = db::history(&client, person.0, before, limit + 1).await?;
    let (items, next_cursor) =
        hc_platform::http::page(rows, limit, |d| cursor::format(d.submitted_at, d.id));
    Ok(web::Json(DeclarationPage { items, next_cursor }))
}
