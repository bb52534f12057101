//! Mutual recognition: our signed trust list (`GET /v1/trust/list`, public), the root key peers pin
//! (`GET /v1/trust/root`), and importing another region's list against its pinned root (`PUT /v1/trust/peers/{region}`,
//! admin), with the table that maps its colours to ours; the EU DCC document signers (`GET` public, `PUT` admin).

use std::collections::HashMap;

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use hc_domain::RegionCode;
use hc_platform::ApiError;
use hc_platform::auth::{Admin, Official};
use hc_platform::http::Json;
use hc_token::dcc::{Signer, SignerKey};
use hc_token::{ListedKey, SignedTrustList, VerifyingKey};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::db;
use crate::state::AppState;
use crate::trust::{colour_table, peer_issuer};
use hc_platform::audit;

/// Our trust list: this platform's code keys and those of every peer imported here, signed with our root key.
#[utoipa::path(get, path = "/v1/trust/list", tag = "trust",
    responses((status = 200, description = "{format, signed}: base64url of a COSE_Sign1 over the JSON list (docs/token-format.md §9)")))]
pub async fn list(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let signed = state.trust.signed_list()?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=300"))
        .json(signed))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RootKey {
    pub region: String,
    pub kid: String,
    /// The raw Ed25519 public key, base64url without padding.
    pub x: String,
}

/// The public half of the root key that signs our trust list. Peers pin it out of band (and compare it with this).
#[utoipa::path(get, path = "/v1/trust/root", tag = "trust", responses((status = 200, body = RootKey)))]
pub async fn root(state: web::Data<AppState>) -> HttpResponse {
    root_answer(state.trust.root())
}

/// A root key's public half as `GET …/root` serves it (this platform's, and the national hub's).
pub(crate) fn root_answer(key: VerifyingKey) -> HttpResponse {
    let listed = ListedKey::of(&key);
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .json(RootKey {
            region: key.issuer,
            kid: listed.kid,
            x: listed.x,
        })
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PeerImport {
    /// The peer's list exactly as its `GET /v1/trust/list` serves it.
    #[schema(value_type = Object)]
    pub list: SignedTrustList,
    /// How each of its colours reads here: every colour it may issue (green, yellow, orange, red) mapped to ours.
    #[schema(value_type = Object, example = json!({"green": "green", "yellow": "yellow", "orange": "orange", "red": "red"}))]
    pub colours: HashMap<String, String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PeerView {
    pub region: String,
    pub sequence: u64,
    pub expires_at: DateTime<Utc>,
    pub keys: Vec<String>,
}

/// Import (or renew) another region's trust list.
#[utoipa::path(put, path = "/v1/trust/peers/{region}", tag = "trust", request_body = PeerImport, security(("bearer" = ["admin"])),
    params(("region" = String, Path, description = "The peer's region code, whose root key is pinned in verification.peer_roots")),
    responses(
        (status = 200, description = "Imported; codes of the peer verify here from now on", body = PeerView),
        (status = 403, description = "Lacks admin, or the client's region scope does not cover this platform's whole region", body = hc_platform::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Older than the list held", body = hc_platform::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "No pinned root, a list that does not verify (with its reason), or an incomplete colour table", body = hc_platform::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn import_peer(
    state: web::Data<AppState>,
    official: Official<Admin>,
    path: web::Path<String>,
    Json(body): Json<PeerImport>,
) -> Result<HttpResponse, ApiError> {
    let region = path.into_inner();
    // Which issuers every gate of this platform trusts is the platform's decision: only an admin whose scope
    // covers the platform's whole region makes it.
    official.require_region(
        RegionCode::parse(&state.trust.issuer).map_err(|e| anyhow::anyhow!("trust.issuer: {e}"))?,
    )?;
    if region == state.trust.issuer {
        return Err(ApiError::unprocessable(
            "region",
            "is this platform's own region",
        ));
    }
    let root = state.trust.pinned(&region).ok_or_else(|| {
        ApiError::unprocessable(
            "region",
            format!("no root key is pinned for {region} (verification.peer_roots)"),
        )
    })?;
    let list = body
        .list
        .verify(root, Utc::now().timestamp())
        .map_err(|e| ApiError::unprocessable("list", format!("{}: {e}", e.code())))?;
    let issuer =
        peer_issuer(&list, &region).map_err(|e| ApiError::unprocessable("list", e.to_string()))?;
    let colours = colour_table(|c| body.colours.get(c).map(String::as_str))
        .map_err(|(field, why)| ApiError::unprocessable(format!("colours.{field}"), why))?;
    let expires_at = DateTime::from_timestamp(list.expires_at, 0).unwrap_or_default();
    let sequence = i64::try_from(list.sequence)
        .map_err(|_| ApiError::unprocessable("list", "sequence is too large"))?;
    let mut client = state.db.get().await?;
    let tx = client.transaction().await?;
    let stored = db::peers::store(
        &tx,
        &db::peers::PeerList {
            region: &region,
            signed: &body.list.signed,
            sequence,
            expires_at,
            colour_map: serde_json::to_value(&colours).map_err(anyhow::Error::from)?,
            imported_by: &official.client_id,
        },
    )
    .await?;
    if !stored {
        return Err(ApiError::Conflict {
            field: Some("list".into()),
            detail: format!("the list held for {region} is newer than sequence {sequence}"),
        });
    }
    audit::Entry {
        actor: &official.client_id,
        action: "trust.import_peer",
        subject: None,
        reason: Some(&region),
        outcome: &format!("sequence {sequence}"),
    }
    .record(&tx)
    .await?;
    tx.commit().await?;
    state.trust.reload_peers(&client).await?;
    tracing::info!(region, sequence, "peer trust list imported");
    Ok(HttpResponse::Ok().json(PeerView {
        region,
        sequence: list.sequence,
        expires_at,
        keys: issuer.keys.iter().map(|k| k.kid.clone()).collect(),
    }))
}

/// The most document signer certificates one upload carries (the EU gateway held about 3,000 in 2022), and the
/// body size that allows.
pub const MAX_DCC_SIGNERS: usize = 3000;
pub const MAX_DCC_SIGNERS_BODY: usize = 4 * 1024 * 1024;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DccSignersUpload {
    /// Every document signer certificate to trust (X.509, DER, base64), 1 to 3,000: the set replaces the one held.
    #[schema(min_items = 1, max_items = 3000)]
    pub certificates: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DccSignerView {
    /// base64 of the 8-byte key id (the first 8 bytes of the certificate's SHA-256).
    pub kid: String,
    /// `ES256 (P-256)`, `ES256 (P-384)` or `PS256 (RSA)`.
    pub algorithm: String,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    /// The certificate types its extended key usage allows; none: every type.
    pub allows: Option<Vec<String>>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DccSignersView {
    pub signers: Vec<DccSignerView>,
}

fn signer_view(signer: &Signer) -> DccSignerView {
    use base64::Engine as _;
    let time = |s: i64| DateTime::from_timestamp(s, 0).unwrap_or_default();
    DccSignerView {
        kid: base64::engine::general_purpose::STANDARD.encode(signer.kid),
        algorithm: match signer.key {
            SignerKey::P256(_) => "ES256 (P-256)",
            SignerKey::P384(_) => "ES256 (P-384)",
            SignerKey::Rsa(_) => "PS256 (RSA)",
        }
        .into(),
        not_before: time(signer.not_before),
        not_after: time(signer.not_after),
        allows: signer
            .allows
            .as_ref()
            .map(|types| types.iter().map(|t| t.name().to_owned()).collect()),
    }
}

fn signers_view(signers: &[Signer]) -> DccSignersView {
    let mut views: Vec<DccSignerView> = signers.iter().map(signer_view).collect();
    views.sort_by(|a, b| (&a.kid, a.not_before).cmp(&(&b.kid, b.not_before)));
    DccSignersView { signers: views }
}

/// The EU DCC document signers trusted here (public, as the EU publishes its own).
#[utoipa::path(get, path = "/v1/trust/dcc-signers", tag = "trust",
    responses((status = 200, description = "Every document signer certificate trusted for EU DCCs", body = DccSignersView)))]
pub async fn dcc_signers(state: web::Data<AppState>) -> HttpResponse {
    let snapshot = state.trust.snapshot();
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=60"))
        .json(signers_view(&snapshot.dcc.all()))
}

/// Replace the EU DCC document signers this platform's gates trust (for example with the EU gateway's download).
#[utoipa::path(put, path = "/v1/trust/dcc-signers", tag = "trust", request_body = DccSignersUpload, security(("bearer" = ["admin"])),
    responses(
        (status = 200, description = "Stored; every gate of the platform uses the set within one refresh (verification.peers_refresh_ms), this replica at once", body = DccSignersView),
        (status = 403, description = "Lacks admin, or the client's region scope does not cover this platform's whole region", body = hc_platform::error::Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than 4 MiB", body = hc_platform::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "No certificates, more than 3,000, or one that is not base64 X.509 with a P-256, P-384 or RSA key (the field names which)", body = hc_platform::error::Problem, content_type = "application/problem+json"),
        (status = 503, description = "PostgreSQL cannot be reached; nothing was stored", body = hc_platform::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn put_dcc_signers(
    state: web::Data<AppState>,
    official: Official<Admin>,
    Json(body): Json<DccSignersUpload>,
) -> Result<HttpResponse, ApiError> {
    use base64::Engine as _;
    official.require_region(
        RegionCode::parse(&state.trust.issuer).map_err(|e| anyhow::anyhow!("trust.issuer: {e}"))?,
    )?;
    if body.certificates.is_empty() || body.certificates.len() > MAX_DCC_SIGNERS {
        return Err(ApiError::unprocessable(
            "certificates",
            format!("must hold 1 to {MAX_DCC_SIGNERS} certificates"),
        ));
    }
    let mut signers: Vec<Signer> = Vec::with_capacity(body.certificates.len());
    for (i, text) in body.certificates.iter().enumerate() {
        let field = || format!("certificates[{i}]");
        let der = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| ApiError::unprocessable(field(), "is not base64"))?;
        let signer =
            Signer::from_der(&der).map_err(|e| ApiError::unprocessable(field(), e.to_string()))?;
        if !signers.iter().any(|s| s.der == signer.der) {
            signers.push(signer);
        }
    }
    let rows: Vec<(Vec<u8>, [u8; 8])> = signers.iter().map(|s| (s.der.clone(), s.kid)).collect();
    let mut client = state.db.get().await?;
    let tx = client.transaction().await?;
    db::dcc_signers::replace(&tx, &rows, &official.client_id).await?;
    audit::Entry {
        actor: &official.client_id,
        action: "trust.dcc_signers",
        subject: None,
        reason: None,
        outcome: &format!("{} certificates", rows.len()),
    }
    .record(&tx)
    .await?;
    tx.commit().await?;
    // Stored: the answer says so even if this replica's reload fails; it and the others reload within
    // peers_refresh_ms.
    if let Err(err) = state.trust.reload_dcc_signers(&client).await {
        tracing::warn!(error = %err, "reloading the DCC signers after an upload failed; the refresh will");
    }
    tracing::info!(certificates = rows.len(), "DCC document signers replaced");
    Ok(HttpResponse::Ok().json(signers_view(&signers)))
}
