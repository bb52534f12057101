//! The return-to-work check. An employer (an official client bound to a region, scope `staff:read`) lists its staff
//! by ID number and label; each person listed sees the employer and accepts it or not; the employer sees the colour
//! of those who accepted, and nothing else, and every colour it sees is audited.

use actix_web::web;
use hc_domain::{Colour, IdNumber};
use hc_platform::ApiError;
use hc_platform::auth::{Citizen, Official, StaffRead};
use hc_platform::http::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::audit::Entry;
use crate::db;
use crate::db::staff::Employer;
pub use crate::db::staff::MyEmployer;
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
pub struct StaffMember {
    #[schema(example = "440106198001010016")]
    pub id_number: String,
    /// The employer's own label (a staff number): what the colour list shows instead of the ID number.
    #[schema(min_length = 1, max_length = 64)]
    pub label: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct StaffList {
    /// The employer's name as its staff see it when they are asked to accept it.
    #[schema(example = "广州某某科技有限公司", min_length = 1, max_length = 100)]
    pub employer_name: String,
    pub staff: Vec<StaffMember>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StaffListStored {
    pub staff: usize,
}

/// The employer's region: an employer is a business in one place, so a nationwide client cannot hold a staff list.
fn employer_region(official: &Official<StaffRead>) -> Result<String, ApiError> {
    official.region.map(|r| r.to_string()).ok_or_else(|| {
        ApiError::forbidden("a staff list belongs to an employer: a client bound to a region")
    })
}

/// An employer replaces its staff list. ID numbers are kept only as blind indexes; a person still on the list keeps
/// their acceptance, a person new to it is pending until they accept.
#[utoipa::path(put, path = "/v1/staff", tag = "staff", request_body = StaffList, security(("bearer" = ["staff:read"])),
    responses(
        (status = 200, description = "Stored", body = StaffListStored),
        (status = 401, description = "No valid token", body = hc_platform::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "The client lacks `staff:read` or is not bound to a region", body = hc_platform::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "A row is invalid; `field` names it (staff[3].id_number)", body = hc_platform::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn put(
    state: web::Data<AppState>,
    official: Official<StaffRead>,
    Json(body): Json<StaffList>,
) -> Result<web::Json<StaffListStored>, ApiError> {
    let region = employer_region(&official)?;
    let name = hc_platform::http::text("employer_name", &body.employer_name, 1..=100)?;
    if body.staff.len() > state.settings.staff_max {
        return Err(ApiError::unprocessable(
            "staff",
            format!("at most {} people", state.settings.staff_max),
        ));
    }
    let today = hc_domain::china_time::day_of(chrono::Utc::now());
    let mut indexes = Vec::with_capacity(body.staff.len());
    let mut labels = Vec::with_capacity(body.staff.len());
    for (i, m) in body.staff.iter().enumerate() {
        let id = IdNumber::parse(&m.id_number, today)
            .map_err(|e| ApiError::unprocessable(format!("staff[{i}].id_number"), e.reason))?;
        let label = hc_platform::http::text(format!("staff[{i}].label"), &m.label, 1..=64)?;
        indexes.push(state.index.id_number(&id));
        labels.push(label.to_owned());
    }
    let employer = Employer {
        id: &official.client_id,
        name,
        region: &region,
    };
    let mut client = state.db.get().await?;
    let tx = client.transaction().await?;
    db::staff::lock_employer(&tx, employer.id).await?;
    let n = db::staff::replace(&tx, &employer, &indexes, &labels).await?;
    tx.commit().await?;
    Ok(web::Json(StaffListStored { staff: n as usize }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StaffColour {
    pub label: String,
    /// Whether the person accepted this employer; until then the colour is not shown.
    pub accepted: bool,
    /// Null until the person has registered and accepted the employer.
    #[schema(value_type = Option<String>, example = "green")]
    pub colour: Option<Colour>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StaffColours {
    pub staff: Vec<StaffColour>,
    pub next_cursor: Option<String>,
}

/// The return-to-work check: the colour of each person the employer listed who accepted it, and nothing else (no
/// reasons, no health details, no one not on the list). Each colour shown is audited before the answer.
#[utoipa::path(get, path = "/v1/staff/colours", tag = "staff", params(PageQuery), security(("bearer" = ["staff:read"])),
    responses(
        (status = 200, description = "Colours by label", body = StaffColours),
        (status = 401, description = "No valid token", body = hc_platform::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "The client lacks `staff:read` or is not bound to a region", body = hc_platform::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "`limit` out of range", body = hc_platform::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn colours(
    state: web::Data<AppState>,
    official: Official<StaffRead>,
    query: web::Query<PageQuery>,
) -> Result<web::Json<StaffColours>, ApiError> {
    employer_region(&official)?;
    let limit = hc_platform::http::page_limit(query.limit, 100, 1000)?;
    let after = query.cursor.clone().unwrap_or_default();
    let client = state.db.get().await?;
    let listed = db::staff::colours(&client, &official.client_id, &after, limit + 1).await?;
    let (listed, next_cursor) = hc_platform::http::page(listed, limit, |s| s.label.clone());
    for (person, colour) in listed.iter().filter_map(|l| l.shown.as_ref()) {
        if colour.is_some() {
            Entry {
                actor: &official.client_id,
                action: "staff.colour",
                subject: Some(*person),
                reason: Some("return-to-work check"),
                outcome: "shown",
            }
            .record(&client)
            .await?;
        }
    }
    let staff = listed
        .into_iter()
        .map(|l| StaffColour {
            label: l.label,
            accepted: l.accepted,
            colour: l.shown.and_then(|(_, colour)| colour),
        })
        .collect();
    Ok(web::Json(StaffColours { staff, next_cursor }))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MyEmployers {
    pub employers: Vec<MyEmployer>,
}

/// The employers that listed the signed-in citizen, and whether the citizen accepted each.
#[utoipa::path(get, path = "/v1/staff/me", tag = "staff", security(("bearer" = [])),
    responses(
        (status = 200, description = "The employers that listed the citizen", body = MyEmployers),
        (status = 401, description = "No valid citizen token", body = hc_platform::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a citizen token", body = hc_platform::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn mine(
    state: web::Data<AppState>,
    Citizen(person): Citizen,
) -> Result<web::Json<MyEmployers>, ApiError> {
    let client = state.db.get().await?;
    let Some(index) = db::subjects::index_of(&client, person.0).await? else {
        return Ok(web::Json(MyEmployers { employers: vec![] }));
    };
    let employers = db::staff::employers_of(&client, &index).await?;
    Ok(web::Json(MyEmployers { employers }))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct Acceptance {
    /// true: the employer may see the citizen's colour; false: it may not (withdrawn at any time).
    pub accepted: bool,
}

/// The citizen accepts an employer that listed them, or withdraws.
#[utoipa::path(put, path = "/v1/staff/me/{employer_id}", tag = "staff", security(("bearer" = [])),
    params(("employer_id" = String, Path, description = "As `GET /v1/staff/me` names it")),
    request_body = Acceptance,
    responses(
        (status = 204, description = "Recorded"),
        (status = 401, description = "No valid citizen token", body = hc_platform::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a citizen token", body = hc_platform::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "That employer did not list the citizen", body = hc_platform::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "`accepted` missing", body = hc_platform::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn accept(
    state: web::Data<AppState>,
    Citizen(person): Citizen,
    path: web::Path<String>,
    Json(body): Json<Acceptance>,
) -> Result<actix_web::HttpResponse, ApiError> {
    let mut client = state.db.get().await?;
    let not_listed = || ApiError::NotFound { what: "employer" };
    let index = db::subjects::index_of(&client, person.0)
        .await?
        .ok_or_else(not_listed)?;
    // After the employer's lock, so that a list being replaced cannot carry the old answer over this one.
    let tx = client.transaction().await?;
    db::staff::lock_employer(&tx, &path).await?;
    if !db::staff::set_accepted(&tx, &path, &index, body.accepted).await? {
        return Err(not_listed());
    }
    tx.commit().await?;
    Ok(actix_web::HttpResponse::NoContent().finish())
}
