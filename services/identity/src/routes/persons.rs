use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use hc_domain::{IdNumber, PersonId, PersonName, Phone, RegionCode};
use hc_platform::auth::{Citizen, Official, PersonRead};
use hc_platform::error::ConflictOnUnique;
use hc_platform::events::{AuthRevoked, PersonRegistered};
use hc_platform::http::Json;
use hc_platform::{ApiError, audit};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{invalid, provider_down};
use crate::db::persons::{self, SealedPerson, StoredPerson};
use crate::db::refresh_tokens;
use crate::otp::{self, Purpose};
use crate::providers::Message;
use crate::state::AppState;
use crate::vault::{self, Field};

#[derive(Debug, Deserialize, ToSchema)]
pub struct RegisterPerson {
    /// Full name as on the resident ID card.
    #[schema(example = "张三", max_length = 50)]
    pub name: String,
    /// 18-character resident ID number (GB 11643-1999).
    #[schema(example = "11010519491231002X", min_length = 18, max_length = 18)]
    pub id_number: String,
    /// Mainland mobile number.
    #[schema(example = "13800138000")]
    pub phone: String,
    /// GB/T 2260 code of the home region.
    #[schema(example = "440106")]
    pub home_region: String,
    /// The code sent to `phone` by `POST /v1/auth/otp` with `purpose: register`; it proves the phone.
    #[schema(example = "123456")]
    pub phone_code: String,
    /// The real-name verifier's ticket for this ID number: proof that the registrant holds it.
    #[schema(example = "dev:11010519491231002X", max_length = 4096)]
    pub real_name_ticket: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PersonCreated {
    /// The person's opaque id: what tokens and other services use.
    pub id: Uuid,
}

/// Register a citizen: the phone is proven with a one-time code and the ID number with a real-name ticket, in that
/// order. The same ID number again returns its person; from another phone the person moves to the new phone
/// (audited, and every session of the old one ends), since only the ID number's holder gets a ticket for it.
#[utoipa::path(post, path = "/v1/persons", tag = "persons", request_body = RegisterPerson,
    responses(
        (status = 201, description = "Registered", body = PersonCreated),
        (status = 200, description = "Already registered: the existing person, now on this phone", body = PersonCreated),
        (status = 401, description = "`phone_code` is wrong, burnt or expired", body = hc_platform::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "The phone is registered to another person (`field`: phone), or another registration of this ID number is under way (`field`: id_number; retry after Retry-After)", body = hc_platform::error::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = hc_platform::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is invalid, or the ticket does not certify this ID number (which counts against the phone's code like a wrong code); `field` names it", body = hc_platform::error::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = hc_platform::error::Problem, content_type = "application/problem+json"),
        (status = 503, description = "The real-name verifier did not answer; see Retry-After", body = hc_platform::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn register(
    state: web::Data<AppState>,
    Json(body): Json<RegisterPerson>,
) -> Result<HttpResponse, ApiError> {
    let name = PersonName::parse(&body.name).map_err(invalid("name"))?;
    let id_number = IdNumber::parse(&body.id_number, hc_domain::china_time::day_of(Utc::now()))
        .map_err(invalid("id_number"))?;
    let phone = Phone::parse(&body.phone).map_err(invalid("phone"))?;
    let region = RegionCode::parse(&body.home_region).map_err(invalid("home_region"))?;
    let ticket = body.real_name_ticket.trim();
    if ticket.is_empty() || ticket.len() > 4096 {
        return Err(ApiError::unprocessable(
            "real_name_ticket",
            "must be the real-name verifier's ticket (1 to 4096 bytes)",
        ));
    }
    let phone_index = state.index.phone(&phone);

    // The phone first, so that nobody without one can use the verifier to learn whether a name fits an ID number.
    if !otp::check(&state, Purpose::Register, &phone_index, &body.phone_code).await? {
        return Err(otp::refused());
    }
    let certified = state
        .real_name
        .certifies(&name, &id_number, ticket)
        .await
        .map_err(provider_down("the real-name verifier"))?;
    if !certified {
        otp::count_failure(&state, Purpose::Register, &phone_index).await?;
        return Err(ApiError::unprocessable(
            "real_name_ticket",
            "does not certify the holder of this ID number; verify again",
        ));
    }

    let id_number_index = state.index.id_number(&id_number);
    let mut client = state.db.get().await?;
    let tx = client.transaction().await?;
    let person = match persons::lock_by_id_number_index(&tx, &id_number_index).await? {
        None => {
            let id = PersonId::new();
            let new = sealed(&state, id, &name, &id_number, &phone, &phone_index)?;
            persons::insert(&tx, &new, &id_number_index, &region.to_string())
                .await
                .conflict_on(PHONE_TAKEN)?
                .ok_or_else(|| ApiError::InProgress {
                    field: Some("id_number".into()),
                    detail: "another registration of this ID number is under way; try again".into(),
                    retry_after: 1,
                })?;
            // Other services key facts by this index; the event lets them link facts to the person. The masked
            // name (张*) is what a checkpoint guard compares with an ID card on verification's ID-card path.
            let event = PersonRegistered {
                person_id: id.0,
                id_number_index: id_number_index.clone(),
                home_region: region.to_string(),
                masked_name: Some(name.masked()),
                national_index: state.national.as_ref().map(|n| n.id_number(&id_number)),
            };
            hc_platform::outbox::enqueue(&tx, PersonRegistered::STREAM, &event.encode()).await?;
            Registered::New(id)
        }
        Some(existing) if existing.phone_index == phone_index => Registered::Again(existing.id),
        Some(existing) => {
            let old_phone = rebind(
                &state,
                &tx,
                existing.id,
                &name,
                &id_number,
                &phone,
                &phone_index,
            )
            .await?;
            Registered::Moved(existing.id, old_phone)
        }
    };
    tx.commit().await?;
    Ok(match person {
        Registered::New(id) => {
            tracing::info!(person = %id, "person registered");
            HttpResponse::Created().json(PersonCreated { id: id.0 })
        }
        Registered::Again(id) => HttpResponse::Ok().json(PersonCreated { id: id.0 }),
        Registered::Moved(id, old_phone) => {
            // Once the move is durable: whoever holds the old phone learns that it no longer signs this person in.
            state
                .sms
                .send_detached(&old_phone, Message::PersonMoved)
                .await;
            HttpResponse::Ok().json(PersonCreated { id: id.0 })
        }
    })
}

enum Registered {
    New(PersonId),
    Again(PersonId),
    /// Moved to this phone from the one given.
    Moved(PersonId, Phone),
}

const PHONE_TAKEN: &[(&str, &str, &str)] = &[(
    "persons_phone_index_key",
    "phone",
    "this phone number is registered to another person",
)];

/// The person's fields sealed under the active data key, bound to the person's id.
fn sealed(
    state: &AppState,
    id: PersonId,
    name: &PersonName,
    id_number: &IdNumber,
    phone: &Phone,
    phone_index: &[u8],
) -> Result<SealedPerson, ApiError> {
    let cipher = &state.cipher;
    Ok(SealedPerson {
        id,
        phone_index: phone_index.to_vec(),
        name_ct: vault::seal(cipher, id, Field::Name, name.expose())?,
        id_number_ct: vault::seal(cipher, id, Field::IdNumber, id_number.expose())?,
        phone_ct: vault::seal(cipher, id, Field::Phone, phone.expose())?,
        data_key_id: cipher.active_key_id().to_owned(),
    })
}

/// The ID number's certified holder registers from a phone other than the person's: the person moves to the new
/// phone, with the name the verifier certified. The old phone's refresh tokens are revoked and its access tokens
/// refused everywhere within a second (`auth.revoked`), and the move is audited. Returns the old phone, to be told.
/// Before this flow, whoever registered an ID number first kept it, and its holder was handed the first
/// registrant's person.
async fn rebind(
    state: &AppState,
    tx: &deadpool_postgres::Transaction<'_>,
    id: PersonId,
    name: &PersonName,
    id_number: &IdNumber,
    phone: &Phone,
    phone_index: &[u8],
) -> Result<Phone, ApiError> {
    let stored = persons::by_id(tx, id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("a locked person vanished"))?;
    let old_phone = unseal(state, &stored)?.phone;
    let new = sealed(state, id, name, id_number, phone, phone_index)?;
    persons::reseal(tx, &new).await.conflict_on(PHONE_TAKEN)?;
    let revoked = refresh_tokens::revoke_person(tx, id).await?;
    let event = AuthRevoked::from_now(id);
    hc_platform::outbox::enqueue(tx, AuthRevoked::STREAM, &event.encode()).await?;
    // The certified name may differ from the first registrant's: announced again, so that a checkpoint compares ID
    // cards with the holder's masked name (consumers keep the link and take the new name).
    let announced = PersonRegistered {
        person_id: id.0,
        id_number_index: state.index.id_number(id_number),
        home_region: stored.home_region.clone(),
        masked_name: Some(name.masked()),
        national_index: state.national.as_ref().map(|n| n.id_number(id_number)),
    };
    hc_platform::outbox::enqueue(tx, PersonRegistered::STREAM, &announced.encode()).await?;
    audit::Entry {
        actor: "real-name-verifier",
        action: "person.rebind_phone",
        subject: Some(id.0),
        reason: Some("registered again from another phone with a certified real-name ticket"),
        outcome: "rebound",
    }
    .record(tx)
    .await?;
    tracing::warn!(person = %id, revoked, "person moved to another phone by its certified holder");
    Ok(old_phone)
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MaskedPerson {
    pub id: Uuid,
    #[schema(example = "张*")]
    pub name: String,
    #[schema(example = "1101**********002X")]
    pub id_number: String,
    #[schema(example = "138****8000")]
    pub phone: String,
    pub home_region: String,
    pub registered_at: DateTime<Utc>,
}

struct Plain {
    name: PersonName,
    id_number: IdNumber,
    phone: Phone,
}

fn unseal(state: &AppState, p: &StoredPerson) -> Result<Plain, ApiError> {
    let open = |field, ct: &[u8]| vault::open(&state.cipher, p.id, &p.data_key_id, field, ct);
    // What was valid when sealed stays valid; a parse failure here means corrupted data, an internal error.
    let corrupt = |what: &str| anyhow::anyhow!("stored {what} of a person does not parse");
    Ok(Plain {
        name: PersonName::parse(&open(Field::Name, &p.name_ct)?).map_err(|_| corrupt("name"))?,
        id_number: IdNumber::parse(
            &open(Field::IdNumber, &p.id_number_ct)?,
            chrono::NaiveDate::MAX,
        )
        .map_err(|_| corrupt("ID number"))?,
        phone: Phone::parse(&open(Field::Phone, &p.phone_ct)?).map_err(|_| corrupt("phone"))?,
    })
}

/// The signed-in citizen's own record, masked.
#[utoipa::path(get, path = "/v1/persons/me", tag = "persons", security(("bearer" = [])),
    responses(
        (status = 200, description = "The citizen's own record, masked", body = MaskedPerson),
        (status = 404, description = "The token's person is not registered here (any more)", body = hc_platform::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid citizen token", body = hc_platform::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a citizen token", body = hc_platform::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn me(
    state: web::Data<AppState>,
    Citizen(id): Citizen,
) -> Result<web::Json<MaskedPerson>, ApiError> {
    let client = state.db.get().await?;
    let stored = persons::by_id(&client, id)
        .await?
        .ok_or(ApiError::NotFound { what: "person" })?;
    let plain = unseal(&state, &stored)?;
    Ok(web::Json(MaskedPerson {
        id: stored.id.0,
        name: plain.name.masked(),
        id_number: plain.id_number.masked(),
        phone: plain.phone.masked(),
        home_region: stored.home_region,
        registered_at: stored.created_at,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AccessReason {
    /// Why the caller needs this record (3 to 200 characters); written to the audit log.
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OfficialPersonView {
    pub id: Uuid,
    pub name: String,
    pub id_number: String,
    pub phone: String,
    pub home_region: String,
    pub registered_at: DateTime<Utc>,
}

/// Look a person up by ID number (scope `person:read`). Every call, found or not, is audited with the
/// caller, the reason it gives and the outcome; a person outside the client's region scope is not found.
#[utoipa::path(get, path = "/v1/persons/by-id-number/{id_number}", tag = "persons", security(("bearer" = ["person:read"])),
    params(("id_number" = String, Path, description = "18-character resident ID number"), AccessReason),
    responses(
        (status = 200, description = "The person's record", body = OfficialPersonView),
        (status = 401, description = "No valid token", body = hc_platform::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "The client lacks `person:read`", body = hc_platform::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such person in the client's region", body = hc_platform::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid ID number or missing reason", body = hc_platform::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn by_id_number(
    state: web::Data<AppState>,
    official: Official<PersonRead>,
    path: web::Path<String>,
    query: web::Query<AccessReason>,
) -> Result<web::Json<OfficialPersonView>, ApiError> {
    let id_number = IdNumber::parse(&path, hc_domain::china_time::day_of(Utc::now()))
        .map_err(invalid("id_number"))?;
    let reason = query.reason.as_deref().map(str::trim).unwrap_or_default();
    if !(3..=200).contains(&reason.chars().count()) {
        return Err(ApiError::unprocessable(
            "reason",
            "a reason of 3 to 200 characters is required for the audit log",
        ));
    }
    let client = state.db.get().await?;
    let found = persons::by_id_number_index(&client, &state.index.id_number(&id_number)).await?;
    let covered = found
        .as_ref()
        .is_some_and(|p| RegionCode::parse(&p.home_region).is_ok_and(|r| official.covers(r)));
    let outcome = match (&found, covered) {
        (Some(_), true) => "found",
        (Some(_), false) => "out_of_region",
        (None, _) => "not_found",
    };
    // The audit row is written before any personal data leaves; if it cannot be written, nothing is shown.
    audit::Entry {
        actor: &official.client_id,
        action: "person.read_by_id_number",
        subject: found.as_ref().map(|p| p.id.0),
        reason: Some(reason),
        outcome,
    }
    .record(&client)
    .await?;
    let stored = found
        .filter(|_| covered)
        .ok_or(ApiError::NotFound { what: "person" })?;
    let plain = unseal(&state, &stored)?;
    Ok(web::Json(OfficialPersonView {
        id: stored.id.0,
        name: plain.name.expose().to_owned(),
        id_number: plain.id_number.expose().to_owned(),
        phone: plain.phone.expose().to_owned(),
        home_region: stored.home_region,
        registered_at: stored.created_at,
    }))
}
