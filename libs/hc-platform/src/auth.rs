//! Access tokens: EdDSA-signed JWTs issued by the identity service and verified locally by every service
//! against the issuer's published keys (JWKS), and the extractors that hand handlers an authenticated,
//! scoped caller.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use anyhow::{Context, anyhow};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use futures_util::future::LocalBoxFuture;
use hc_domain::{PersonId, RegionCode, Scope, Scopes};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::defences::Defences;
use crate::error::ApiError;
use crate::settings::AuthSettings;
use crate::tls::Tls;

/// Who a token speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SubjectKind {
    Citizen,
    Client,
}

/// The claims of an access token. `sub` is an opaque person id or an API client id, never personal data.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    /// Space-separated scopes on the wire (RFC 8693 style), a set once read.
    pub scope: Scopes,
    pub kind: SubjectKind,
    /// An official client's region scope (GB/T 2260 code); absent for citizens and nationwide clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

struct SigningKey {
    kid: String,
    encoding: EncodingKey,
    public: Vec<u8>,
}

/// The issuer's Ed25519 keys: the first signs, all are published until their tokens have expired.
pub struct KeyRing {
    keys: Vec<SigningKey>,
}

impl KeyRing {
    /// `spec` is `kid:base64-pkcs8[,kid:base64-pkcs8…]`; the first key signs.
    pub fn from_spec(spec: &SecretString) -> anyhow::Result<Self> {
        let mut keys = Vec::new();
        for entry in crate::settings::list(spec.expose_secret()) {
            let (kid, der) = entry
                .split_once(':')
                .ok_or_else(|| anyhow!("a signing key must be kid:base64-pkcs8"))?;
            let der = STANDARD
                .decode(der)
                .with_context(|| format!("signing key {kid} is not base64"))?;
            let pair = Ed25519KeyPair::from_pkcs8(&der)
                .map_err(|_| anyhow!("signing key {kid} is not Ed25519 PKCS#8"))?;
            keys.push(SigningKey {
                kid: kid.to_owned(),
                encoding: EncodingKey::from_ed_der(&der),
                public: pair.public_key().as_ref().to_vec(),
            });
        }
        anyhow::ensure!(!keys.is_empty(), "no signing key configured");
        Ok(Self { keys })
    }

    /// A fresh key as `kid:base64-pkcs8`, for `identity generate-secrets` and tests.
    pub fn generate_spec(kid: &str) -> anyhow::Result<String> {
        let der = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .map_err(|_| anyhow!("key generation failed"))?;
        Ok(format!("{kid}:{}", STANDARD.encode(der.as_ref())))
    }

    pub fn sign(&self, claims: &AccessClaims) -> anyhow::Result<String> {
        let key = &self.keys[0];
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&header, claims, &key.encoding).context("signing an access token")
    }

    /// The public keys as a JWKS document (RFC 7517, OKP keys of RFC 8037).
    pub fn jwks(&self) -> serde_json::Value {
        let keys: Vec<_> = self
            .keys
            .iter()
            .map(|k| {
                serde_json::json!({
                    "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig",
                    "kid": k.kid, "x": URL_SAFE_NO_PAD.encode(&k.public),
                })
            })
            .collect();
        serde_json::json!({ "keys": keys })
    }

    /// A verifier that trusts exactly these keys (the issuer verifies its own tokens without a network call).
    pub fn verifier(&self, settings: &AuthSettings) -> anyhow::Result<TokenVerifier> {
        let keys = self
            .keys
            .iter()
            .map(|k| {
                Ok((
                    k.kid.clone(),
                    DecodingKey::from_ed_components(&URL_SAFE_NO_PAD.encode(&k.public))?,
                ))
            })
            .collect::<anyhow::Result<HashMap<_, _>>>()?;
        Ok(TokenVerifier::new(keys, None, settings))
    }
}

/// Why a token was refused. Kept apart from `ApiError` so the reason can be logged while the client only
/// sees "invalid token".
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no bearer token")]
    Missing,
    #[error("token signed by unknown key")]
    UnknownKey,
    #[error("token revoked")]
    Revoked,
    #[error("invalid token: {0}")]
    Invalid(#[from] jsonwebtoken::errors::Error),
}

/// Verifies access tokens locally. Keys come from the issuer's key ring or from its JWKS URL, fetched on
/// first use and again when a token names a key id not seen yet (at most every 30 s, so a flood of forged
/// key ids cannot turn into a flood of fetches).
pub struct TokenVerifier {
    keys: RwLock<HashMap<String, DecodingKey>>,
    /// Where the issuer's keys are fetched, and the client that fetches them.
    jwks: Option<(String, reqwest::Client)>,
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
    validation: Validation,
    /// Tokens verified already, by their exact text: a hit needs the very same token, so nothing can be forged
    /// into it; entries are used only until the token's `exp`.
    /// Shared, so a hit costs a reference count rather than a copy of every claim's string.
    verified: Option<quick_cache::sync::Cache<String, Arc<AccessClaims>>>,
    leeway: i64,
    /// Subjects whose tokens issued before a time are revoked (`auth.revoked`, followed by [`crate::revocation`]):
    /// held here so that the check costs no round trip.
    revoked: RwLock<HashMap<String, i64>>,
}

const JWKS_REFETCH_INTERVAL: Duration = Duration::from_secs(30);

impl TokenVerifier {
    fn new(
        keys: HashMap<String, DecodingKey>,
        jwks: Option<(String, reqwest::Client)>,
        settings: &AuthSettings,
    ) -> Self {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[&settings.issuer]);
        validation.set_audience(&[&settings.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = settings.leeway_seconds;
        Self {
            keys: RwLock::new(keys),
            jwks,
            last_fetch: tokio::sync::Mutex::new(None),
            validation,
            verified: (settings.verified_cache_capacity > 0)
                .then(|| quick_cache::sync::Cache::new(settings.verified_cache_capacity)),
            leeway: i64::try_from(settings.leeway_seconds).unwrap_or(i64::MAX),
            revoked: RwLock::new(HashMap::new()),
        }
    }

    /// Refuses from now on every token of `subject` issued before `not_before`.
    pub fn revoke(&self, subject: &str, not_before: i64) {
        let mut revoked = self.revoked.write().unwrap_or_else(|p| p.into_inner());
        let at = revoked.entry(subject.to_owned()).or_insert(not_before);
        *at = (*at).max(not_before);
        // Once every token issued before it has expired, a revocation refuses nothing more.
        if revoked.len() > 10_000 {
            let horizon =
                chrono::Utc::now().timestamp() - crate::revocation::LOOKBACK.as_secs() as i64;
            revoked.retain(|_, at| *at > horizon);
        }
    }

    fn check_revoked(&self, claims: &AccessClaims) -> Result<(), AuthError> {
        let revoked = self.revoked.read().unwrap_or_else(|p| p.into_inner());
        match revoked.get(&claims.sub) {
            Some(not_before) if claims.iat < *not_before => Err(AuthError::Revoked),
            _ => Ok(()),
        }
    }

    /// A verifier for services that do not issue tokens: keys from `auth.jwks_url`.
    /// Under `tls.required` the URL must be https: whoever answers a plain fetch could mint any token.
    pub fn from_jwks_url(settings: &AuthSettings, tls: &Tls) -> anyhow::Result<Self> {
        tls.check_https("auth.jwks_url", &settings.jwks_url)?;
        let http = tls
            .http_client()
            .build()
            .context("the key fetch's HTTP client")?;
        let jwks = Some((settings.jwks_url.clone(), http));
        Ok(Self::new(HashMap::new(), jwks, settings))
    }

    /// Verifies with the keys already known, without any I/O (the hot path, and what the benchmark measures).
    pub fn verify_cached(&self, token: &str) -> Result<AccessClaims, AuthError> {
        let header = jsonwebtoken::decode_header(token)?;
        let kid = header.kid.unwrap_or_default();
        let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
        let key = keys.get(&kid).ok_or(AuthError::UnknownKey)?;
        Ok(jsonwebtoken::decode::<AccessClaims>(token, key, &self.validation)?.claims)
    }

    pub async fn verify(&self, token: &str) -> Result<Arc<AccessClaims>, AuthError> {
        let claims = self.verify_signed(token).await?;
        self.check_revoked(&claims)?;
        Ok(claims)
    }

    async fn verify_signed(&self, token: &str) -> Result<Arc<AccessClaims>, AuthError> {
        if let Some(verified) = &self.verified
            && let Some(claims) = verified.get(token)
            && claims.exp + self.leeway > chrono::Utc::now().timestamp()
        {
            return Ok(claims);
        }
        let claims = Arc::new(self.verify_with_keys(token).await?);
        if let Some(verified) = &self.verified {
            verified.insert(token.to_owned(), claims.clone());
        }
        Ok(claims)
    }

    async fn verify_with_keys(&self, token: &str) -> Result<AccessClaims, AuthError> {
        match self.verify_cached(token) {
            Err(AuthError::UnknownKey) if self.jwks.is_some() => {
                // One fetch at a time: requests arriving meanwhile wait for it and then try the fresh keys, so a
                // cold start under load is not a burst of 401s. The time is recorded only once an attempt has
                // finished, so a request dropped mid-fetch (its client went away) does not block the next one.
                let mut last = self.last_fetch.lock().await;
                if let Err(AuthError::UnknownKey) = self.verify_cached(token)
                    && last.is_none_or(|at| at.elapsed() >= JWKS_REFETCH_INTERVAL)
                {
                    if let Err(err) = self.refetch().await {
                        tracing::warn!(error = %err, "fetching the issuer's public keys failed");
                    }
                    *last = Some(Instant::now());
                }
                drop(last);
                self.verify_cached(token)
            }
            other => other,
        }
    }

    async fn refetch(&self) -> anyhow::Result<()> {
        let Some((url, http)) = &self.jwks else {
            return Ok(());
        };
        let request = http.get(url).timeout(Duration::from_secs(2));
        let set: JwkSet = crate::http::with_trace_context(request)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let mut fresh = HashMap::new();
        for jwk in &set.keys {
            if let Some(kid) = &jwk.common.key_id {
                fresh.insert(kid.clone(), DecodingKey::from_jwk(jwk)?);
            }
        }
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = fresh;
        Ok(())
    }
}

/// The bearer token of a request, if it has one (for passing a citizen's own token on to another service).
pub fn bearer(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

pub(crate) async fn authenticate(req: &HttpRequest) -> Result<Arc<AccessClaims>, ApiError> {
    let verifier = req
        .app_data::<web::Data<TokenVerifier>>()
        .ok_or_else(|| ApiError::Internal(anyhow!("no TokenVerifier registered")))?;
    let token =
        bearer(req).ok_or_else(|| ApiError::unauthorized("a bearer access token is required"))?;
    verifier.verify(token.trim()).await.map_err(|err| {
        tracing::info!(reason = %err, "access token refused");
        ApiError::unauthorized("the access token is invalid or expired")
    })
}

/// A signed-in citizen: the handler gets the opaque person id, nothing else.
#[derive(Debug, Clone, Copy)]
pub struct Citizen(pub PersonId);

impl FromRequest for Citizen {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let claims = authenticate(&req).await?;
            if claims.kind != SubjectKind::Citizen {
                return Err(ApiError::forbidden("this endpoint is for citizens"));
            }
            let id = claims
                .sub
                .parse()
                .map_err(|_| ApiError::unauthorized("the access token is invalid"))?;
            Ok(Citizen(PersonId(id)))
        })
    }
}

/// What an endpoint for official clients needs, as a type, so a handler states it in its signature:
/// `Official<PersonRead>`.
pub trait Needs {
    /// The client must hold one of these; empty: any official client (the handler checks with
    /// [`Official::require`]). Where there are several, the handler narrows it the same way.
    const ONE_OF: &'static [Scope];
}

macro_rules! needs {
    ($($ty:ident),* $(,)?) => {
        $(
            #[doc = concat!("Needs [`Scope::", stringify!($ty), "`].")]
            pub struct $ty;
            impl Needs for $ty { const ONE_OF: &'static [Scope] = &[Scope::$ty]; }
        )*
    };
}

needs!(
    ImportNat,
    ImportCases,
    ImportVisits,
    RiskWrite,
    RulesWrite,
    Verify,
    VerifyId,
    PersonRead,
    TraceRead,
    AppealsResolve,
    StaffRead,
    Admin,
);

/// Any official client, whatever its scopes: for endpoints whose scope depends on the request (an import's
/// kind); the handler calls [`Official::require`].
pub struct AnyScope;
impl Needs for AnyScope {
    const ONE_OF: &'static [Scope] = &[];
}

/// Any of the import scopes: for the import routes, whose exact scope depends on the kind named in the request (the
/// handler calls [`Official::require`] once it knows it). A client with none of them is refused before the request
/// is read.
pub struct AnyImport;
impl Needs for AnyImport {
    const ONE_OF: &'static [Scope] = &[Scope::ImportNat, Scope::ImportCases, Scope::ImportVisits];
}

/// An official API client holding scope `S`, with its region scope.
#[derive(Debug)]
pub struct Official<S> {
    pub client_id: String,
    pub region: Option<RegionCode>,
    scopes: Scopes,
    _scope: PhantomData<S>,
}

impl<S: Needs> Official<S> {
    /// 403 unless the client holds `scope`.
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.scopes.contains(scope) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "this endpoint needs the scope {scope}"
            )))
        }
    }

    /// Whether `region` lies inside this client's region scope (a nationwide client sees everything).
    pub fn covers(&self, region: RegionCode) -> bool {
        self.region.is_none_or(|own| own.contains(region))
    }

    /// Whether a region as stored (text, perhaps absent) lies inside this client's region scope: one that is absent
    /// or does not parse, only a nationwide client's.
    pub fn covers_stored(&self, region: Option<&str>) -> bool {
        let parsed = region.and_then(|r| RegionCode::parse(r.trim()).ok());
        self.region.is_none() || parsed.is_some_and(|r| self.covers(r))
    }

    /// Every scope the client holds.
    pub fn scopes(&self) -> Scopes {
        self.scopes
    }

    /// 403 unless `region` lies inside this client's region scope.
    pub fn require_region(&self, region: RegionCode) -> Result<(), ApiError> {
        if self.covers(region) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "region {region} is outside this client's region scope"
            )))
        }
    }
}

impl<S: Needs + 'static> FromRequest for Official<S> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let claims = authenticate(&req).await?;
            if claims.kind != SubjectKind::Client {
                return Err(ApiError::forbidden("this endpoint is for official clients"));
            }
            if let Some(defences) = req.app_data::<web::Data<Defences>>() {
                defences.check_key(&claims.sub)?;
            }
            if !S::ONE_OF.is_empty() && !S::ONE_OF.iter().any(|s| claims.scope.contains(*s)) {
                return Err(ApiError::forbidden(match S::ONE_OF {
                    [needed] => format!("this endpoint needs the scope {needed}"),
                    several => {
                        let names: Vec<&str> = several.iter().map(|s| s.into()).collect();
                        format!("this endpoint needs one of the scopes {}", names.join(", "))
                    }
                }));
            }
            let region = claims
                .region
                .as_deref()
                .map(RegionCode::parse)
                .transpose()
                .map_err(|_| {
                    ApiError::unauthorized("the access token carries an invalid region")
                })?;
            Ok(Official {
                client_id: claims.sub.clone(),
                region,
                scopes: claims.scope,
                _scope: PhantomData,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> AuthSettings {
        AuthSettings {
            issuer: "hc-identity".into(),
            audience: "hc-platform".into(),
            jwks_url: String::new(),
            leeway_seconds: 0,
            verified_cache_capacity: 0,
        }
    }

    fn claims(exp_in: i64) -> AccessClaims {
        let now = chrono::Utc::now().timestamp();
        AccessClaims {
            iss: "hc-identity".into(),
            aud: "hc-platform".into(),
            sub: uuid::Uuid::new_v4().to_string(),
            iat: now,
            exp: now + exp_in,
            jti: uuid::Uuid::new_v4().to_string(),
            scope: Scope::Citizen.into(),
            kind: SubjectKind::Citizen,
            region: None,
        }
    }

    fn ring(kid: &str) -> KeyRing {
        KeyRing::from_spec(&SecretString::from(
            KeyRing::generate_spec(kid).expect("keygen"),
        ))
        .expect("ring")
    }

    #[test]
    fn a_signed_token_verifies_and_carries_its_claims() {
        let ring = ring("k1");
        let original = claims(300);
        let token = ring.sign(&original).expect("sign");
        let verified = ring
            .verifier(&settings())
            .expect("verifier")
            .verify_cached(&token)
            .expect("valid");
        assert_eq!(verified.sub, original.sub);
        assert!(verified.scope.contains(Scope::Citizen) && !verified.scope.contains(Scope::Admin));
    }

    #[test]
    fn expired_foreign_and_tampered_tokens_are_refused() {
        let ring1 = ring("k1");
        let verifier = ring1.verifier(&settings()).expect("verifier");
        let expired = ring1.sign(&claims(-60)).expect("sign");
        assert!(matches!(
            verifier.verify_cached(&expired),
            Err(AuthError::Invalid(_))
        ));
        // Same key id, different key: the signature must fail.
        let forged = ring("k1").sign(&claims(300)).expect("sign");
        assert!(matches!(
            verifier.verify_cached(&forged),
            Err(AuthError::Invalid(_))
        ));
        let unknown = ring("k9").sign(&claims(300)).expect("sign");
        assert!(matches!(
            verifier.verify_cached(&unknown),
            Err(AuthError::UnknownKey)
        ));
        let mut tampered = ring1.sign(&claims(300)).expect("sign");
        tampered.insert(tampered.len() / 2, 'A');
        assert!(verifier.verify_cached(&tampered).is_err());
    }

    #[tokio::test]
    async fn a_verified_token_is_remembered_until_it_expires_and_only_the_exact_token() {
        let ring1 = ring("k1");
        let verifier = ring1
            .verifier(&AuthSettings {
                verified_cache_capacity: 10,
                ..settings()
            })
            .expect("verifier");
        let token = ring1.sign(&claims(300)).expect("sign");
        let short = ring1.sign(&claims(1)).expect("sign");
        assert!(verifier.verify(&token).await.is_ok());
        assert!(verifier.verify(&short).await.is_ok());
        // The keys are gone: only the remembered verification can still say yes.
        verifier
            .keys
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        assert!(verifier.verify(&token).await.is_ok(), "remembered");
        let mut tampered = token.clone();
        tampered.push('A');
        assert!(
            verifier.verify(&tampered).await.is_err(),
            "a different text is verified afresh"
        );
        tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
        assert!(
            verifier.verify(&short).await.is_err(),
            "not past its expiry"
        );
    }

    #[test]
    fn the_jwks_publishes_every_key_of_the_ring() {
        let spec = format!(
            "{},{}",
            KeyRing::generate_spec("new").expect("k"),
            KeyRing::generate_spec("old").expect("k")
        );
        let ring = KeyRing::from_spec(&SecretString::from(spec)).expect("ring");
        let jwks: JwkSet = serde_json::from_value(ring.jwks()).expect("valid JWKS");
        let kids: Vec<_> = jwks
            .keys
            .iter()
            .filter_map(|k| k.common.key_id.clone())
            .collect();
        assert_eq!(kids, ["new", "old"]);
        assert!(jwks.keys.iter().all(|k| DecodingKey::from_jwk(k).is_ok()));
    }
}
