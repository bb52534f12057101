use actix_web::{HttpRequest, HttpResponse, web};
use aws_lc_rs::digest::{SHA256, digest};
use chrono::{Duration, Utc};
use hc_domain::{PersonId, Phone, Scope, Scopes};
use hc_platform::ApiError;
use hc_platform::auth::{AccessClaims, SubjectKind};
use hc_platform::events::AuthRevoked;
use hc_platform::http::Json;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::invalid;
use crate::db::{clients, persons, refresh_tokens};
use crate::otp::{self, Purpose, hex};
use crate::providers::Message;
use crate::rate_limit;
use crate::state::AppState;

const ADMIN_CLIENT_ID: &str = "admin";

#[derive(Debug, Deserialize, ToSchema)]
pub struct OtpRequest {
    #[schema(example = "13800138000")]
    pub phone: String,
    /// `sign_in` (the default: a code only if the phone is registered) or `register` (a code to any phone, which
    /// `POST /v1/persons` asks for as `phone_code`).
    #[serde(default)]
    pub purpose: Purpose,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OtpSent {
    /// Seconds the code stays valid.
    pub expires_in: u64,
}

/// Send a six-digit code: to sign in, to a registered phone; to register, to any phone. The answer is the same
/// whether or not the phone is registered, so the endpoint cannot be used to find out who is.
#[utoipa::path(post, path = "/v1/auth/otp", tag = "auth", request_body = OtpRequest,
    responses(
        (status = 202, description = "A code was sent: to register, always; to sign in, if the phone is registered", body = OtpSent),
        (status = 422, description = "Invalid phone", body = hc_platform::error::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many codes for this phone or client IP; see Retry-After", body = hc_platform::error::Problem, content_type = "application/problem+json"),
        (status = 503, description = "The SMS gateway did not take a registration code; see Retry-After", body = hc_platform::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn request_otp(
    state: web::Data<AppState>,
    req: HttpRequest,
    Json(body): Json<OtpRequest>,
) -> Result<HttpResponse, ApiError> {
    let phone = Phone::parse(&body.phone).map_err(invalid("phone"))?;
    let limits = &state.settings.otp;
    let phone_index = state.index.phone(&phone);
    let phone_key = hex(&phone_index);
    // Three counters: an address cannot send to every phone, nor use up one phone's sends for its owner (who asks
    // from another address), and a phone gets a bounded number of messages whoever asks.
    let ip = hc_platform::defences::client_ip(&req)
        .map(|ip| {
            hex(&state.index.of(
                hc_platform::privacy::Purpose::ClientIp,
                ip.to_string().as_bytes(),
            ))
        })
        .unwrap_or_default();
    for (key, limit) in [
        (format!("otp-ip:{ip}"), limits.per_ip_per_hour),
        (
            format!("otp-phone-ip:{phone_key}:{ip}"),
            limits.per_phone_per_hour,
        ),
        (
            format!("otp-phone:{phone_key}"),
            limits.per_phone_all_addresses_per_hour,
        ),
    ] {
        rate_limit::hit(&state.store, &format!("ratelimit:{key}"), limit, 3600).await?;
    }

    // The same work whatever the answer: a code is issued for every phone (one that nobody receives can never be
    // used: a sign-in also needs a registered phone), and a sign-in code leaves without the answer waiting for the
    // gateway, so neither the answer nor its time tells whether the phone is registered. A registration code goes
    // to any phone, so its answer may wait for the gateway and report a failure.
    let code = otp::issue(&state, body.purpose, &phone_index).await?;
    let message = Message::Code {
        code,
        ttl_seconds: limits.ttl_seconds,
    };
    match body.purpose {
        Purpose::Register => state
            .sms
            .send(&phone, &message)
            .await
            .map_err(super::provider_down("the SMS gateway"))?,
        Purpose::SignIn => {
            let client = state.db.get().await?;
            if persons::id_by_phone_index(&client, &phone_index)
                .await?
                .is_some()
            {
                state.sms.send_detached(&phone, message).await;
            }
        }
    }
    Ok(HttpResponse::Accepted().json(OtpSent {
        expires_in: limits.ttl_seconds,
    }))
}

/// One endpoint for the three grants. Fields beyond `grant_type` depend on it.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TokenRequest {
    /// `otp` (citizen: phone + code), `refresh_token`, or `client_credentials` (official: client_id + client_secret).
    #[schema(example = "otp")]
    pub grant_type: String,
    pub phone: Option<String>,
    pub code: Option<String>,
    pub refresh_token: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    #[schema(example = "Bearer")]
    pub token_type: String,
    pub expires_in: i64,
    /// Only for citizens; rotates on every use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    pub scope: String,
}

fn required<'a>(
    value: &'a Option<String>,
    field: &'static str,
    grant: &str,
) -> Result<&'a str, ApiError> {
    value.as_deref().filter(|v| !v.is_empty()).ok_or_else(|| {
        ApiError::unprocessable(field, format!("is required for grant_type {grant}"))
    })
}

/// Exchange a one-time code, a refresh token or client credentials for an access token.
#[utoipa::path(post, path = "/v1/auth/token", tag = "auth", request_body = TokenRequest,
    responses(
        (status = 200, description = "Tokens issued", body = TokenResponse),
        (status = 401, description = "Wrong, expired, burnt or reused credential", body = hc_platform::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Missing or invalid field", body = hc_platform::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn token(
    state: web::Data<AppState>,
    Json(body): Json<TokenRequest>,
) -> Result<web::Json<TokenResponse>, ApiError> {
    let grant = body.grant_type.as_str();
    match grant {
        "otp" => {
            let phone =
                Phone::parse(required(&body.phone, "phone", grant)?).map_err(invalid("phone"))?;
            let code = required(&body.code, "code", grant)?;
            otp_grant(&state, &phone, code).await
        }
        "refresh_token" => {
            refresh_grant(
                &state,
                required(&body.refresh_token, "refresh_token", grant)?,
            )
            .await
        }
        "client_credentials" => {
            let id = required(&body.client_id, "client_id", grant)?;
            client_grant(
                &state,
                id,
                required(&body.client_secret, "client_secret", grant)?,
            )
            .await
        }
        _ => Err(ApiError::unprocessable(
            "grant_type",
            "must be otp, refresh_token or client_credentials",
        )),
    }
    .map(web::Json)
}

async fn otp_grant(state: &AppState, phone: &Phone, code: &str) -> Result<TokenResponse, ApiError> {
    let phone_index = state.index.phone(phone);
    if !otp::check(state, Purpose::SignIn, &phone_index, code).await? {
        return Err(otp::refused());
    }
    // The person is held until the refresh token is stored: a move to another phone that commits meanwhile would
    // revoke the person's tokens before this one exists, and leave the old phone signed in.
    let client = state.db.get().await?;
    let (refresh, hash, expires) = refresh_token(state)?;
    let person =
        refresh_tokens::insert_for_phone(&client, &phone_index, &hash, Uuid::new_v4(), expires)
            .await?
            .ok_or_else(otp::refused)?;
    citizen_tokens(state, person, refresh)
}

async fn refresh_grant(state: &AppState, presented: &str) -> Result<TokenResponse, ApiError> {
    let hash = digest(&SHA256, presented.as_bytes()).as_ref().to_vec();
    let mut client = state.db.get().await?;
    let tx = client.transaction().await?;
    // The person's row first, then the token's, in the order a move to another phone takes them (the person, then
    // every token of theirs): the move then waits for this rotation and revokes the new token too, or this waits
    // for the move and finds the token revoked; never a deadlock, never a token that outlives the move.
    if let Some(person) = refresh_tokens::person_of(&tx, &hash).await? {
        persons::share(&tx, person).await?;
    }
    let Some(row) = refresh_tokens::lock(&tx, &hash).await? else {
        return Err(ApiError::unauthorized("unknown refresh token"));
    };
    if row.rotated && !row.revoked {
        // A rotated token presented again means two parties hold the family: revoke all of it.
        let revoked = refresh_tokens::revoke_family(&tx, row.family_id).await?;
        // And the access tokens either party holds: every service refuses them within a second.
        let event = AuthRevoked::from_now(row.person_id);
        hc_platform::outbox::enqueue(&tx, AuthRevoked::STREAM, &event.encode()).await?;
        tx.commit().await?;
        tracing::warn!(person = %row.person_id, revoked, "refresh token reuse detected; family revoked");
        return Err(ApiError::unauthorized(
            "refresh token reuse detected; sign in again",
        ));
    }
    if row.revoked || row.rotated {
        return Err(ApiError::unauthorized(
            "refresh token revoked; sign in again",
        ));
    }
    if row.expires_at <= Utc::now() {
        return Err(ApiError::unauthorized(
            "refresh token expired; sign in again",
        ));
    }
    refresh_tokens::mark_rotated(&tx, &hash).await?;
    let (refresh, new_hash, expires) = refresh_token(state)?;
    refresh_tokens::insert(&tx, &new_hash, row.family_id, row.person_id, expires).await?;
    tx.commit().await?;
    citizen_tokens(state, row.person_id, refresh)
}

async fn client_grant(
    state: &AppState,
    client_id: &str,
    secret: &str,
) -> Result<TokenResponse, ApiError> {
    let refused = || ApiError::unauthorized("unknown client or wrong secret");
    let presented = digest(&SHA256, secret.as_bytes());
    let (scopes, region) = if client_id == ADMIN_CLIENT_ID {
        let admin = state.settings.admin_key.expose_secret();
        if admin.is_empty() || digest(&SHA256, admin.as_bytes()).as_ref() != presented.as_ref() {
            return Err(refused());
        }
        // The root of delegation: nationwide, with every scope an official client can hold, so that it can create
        // the clients (regional admins among them) that hold each (a client is created within its creator's).
        (
            Scope::ALL
                .iter()
                .copied()
                .filter(|s| s.is_official())
                .collect(),
            None,
        )
    } else {
        let id: Uuid = client_id.parse().map_err(|_| refused())?;
        let db = state.db.get().await?;
        let (row, secret_hash) = clients::by_id(&db, id).await?.ok_or_else(refused)?;
        if row.revoked_at.is_some() || secret_hash != presented.as_ref() {
            return Err(refused());
        }
        (Scopes::parse(&row.scopes.join(" ")), row.region)
    };
    let ttl = state.settings.client_token_ttl_seconds;
    let access_token = sign(
        state,
        client_id.to_owned(),
        SubjectKind::Client,
        scopes,
        region,
        ttl,
    )?;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer".into(),
        expires_in: ttl,
        refresh_token: None,
        scope: scopes.to_string(),
    })
}

fn citizen_tokens(
    state: &AppState,
    person: PersonId,
    refresh: String,
) -> Result<TokenResponse, ApiError> {
    let ttl = state.settings.citizen_token_ttl_seconds;
    let access_token = sign(
        state,
        person.to_string(),
        SubjectKind::Citizen,
        Scope::Citizen.into(),
        None,
        ttl,
    )?;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer".into(),
        expires_in: ttl,
        refresh_token: Some(refresh),
        scope: Scope::Citizen.to_string(),
    })
}

fn sign(
    state: &AppState,
    sub: String,
    kind: SubjectKind,
    scope: Scopes,
    region: Option<String>,
    ttl: i64,
) -> Result<String, ApiError> {
    let now = Utc::now().timestamp();
    let claims = AccessClaims {
        iss: state.auth.issuer.clone(),
        aud: state.auth.audience.clone(),
        sub,
        iat: now,
        exp: now + ttl,
        jti: Uuid::new_v4().to_string(),
        scope,
        kind,
        region: region.map(|r| r.trim().to_owned()),
    };
    Ok(state.keys.sign(&claims)?)
}

/// A new refresh token: what the client holds, the hash stored of it, and when it expires.
fn refresh_token(state: &AppState) -> Result<(String, Vec<u8>, chrono::DateTime<Utc>), ApiError> {
    let token = hc_platform::privacy::random_token(32)?;
    let hash = digest(&SHA256, token.as_bytes()).as_ref().to_vec();
    let expires = Utc::now() + Duration::days(state.settings.refresh_token_ttl_days);
    Ok((token, hash, expires))
}
