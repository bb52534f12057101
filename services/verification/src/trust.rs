//! The issuers this checkpoint trusts, held in memory for the hot path: this platform's own code keys (fetched from
//! its rendering service's `GET /v1/trust/keys`) and the issuers of other regions' trust lists imported against
//! their pinned root keys, each with its colour table. Our own signed trust list is made from the same data. And
//! the document signers of EU Digital COVID Certificates, as an admin last loaded them.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use deadpool_postgres::{GenericClient, Pool};
use hc_domain::Colour;
use hc_token::dcc::{Signer, Signers};
use hc_token::{
    ListedKey, SignedTrustList, SigningKey, TrustList, TrustStore, TrustedIssuer, VerifyingKey,
};
use secrecy::ExposeSecret;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use hc_platform::tls::Tls;

use crate::settings::VerificationSettings;

/// How another issuer's colours read here.
pub type ColourMap = HashMap<Colour, Colour>;

/// One trusted issuer.
#[derive(Debug, Clone)]
pub struct Issuer {
    pub region: String,
    pub keys: Vec<VerifyingKey>,
    /// None for our own issuer (its colours are ours).
    pub colours: Option<ColourMap>,
}

/// A consistent picture of everything trusted, swapped whole on every change.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub store: TrustStore,
    pub issuers: HashMap<String, Issuer>,
    /// EU DCC document signers.
    pub dcc: Arc<Signers>,
}

impl Snapshot {
    fn build(own: Option<&Issuer>, peers: &[Issuer], dcc: Arc<Signers>) -> Self {
        let mut issuers = HashMap::new();
        let mut keys = Vec::new();
        // Our own issuer first: another list naming our region cannot add keys to it (the first entry of an issuer
        // stands). Key ids may repeat across issuers: a verifier tries each key under an id.
        for issuer in own.into_iter().chain(peers) {
            if issuers.contains_key(&issuer.region) {
                continue;
            }
            keys.extend(issuer.keys.iter().cloned());
            issuers.insert(issuer.region.clone(), issuer.clone());
        }
        Self {
            store: TrustStore::new(keys),
            issuers,
            dcc,
        }
    }
}

/// The keys as rendering publishes them: OKP JWKs whose `kid`, `x` and `signs_until` are a [`ListedKey`]'s (the rest is
/// ignored).
#[derive(Debug, Deserialize)]
struct PublishedKeys {
    issuer: String,
    keys: Vec<ListedKey>,
}

pub struct Trust {
    current: RwLock<Arc<Snapshot>>,
    own: RwLock<Option<Issuer>>,
    peers: RwLock<Vec<Issuer>>,
    dcc: RwLock<Arc<Signers>>,
    national: RwLock<National>,
    national_root: Option<VerifyingKey>,
    hub_url: String,
    /// Unix seconds.
    started_at: i64,
    pub issuer: String,
    root: SigningKey,
    pinned: HashMap<String, VerifyingKey>,
    own_keys_url: String,
    http: reqwest::Client,
    list_days: i64,
}

impl Trust {
    pub fn from_settings(s: &VerificationSettings, tls: &Tls) -> anyhow::Result<Self> {
        tls.check_https("verification.own_keys_url", &s.own_keys_url)?;
        let (kid, seed) = s.root_key.expose_secret().trim().split_once(':').context(
            "verification.root_key is not kid:base64-seed (see verification generate-secrets)",
        )?;
        let seed = STANDARD
            .decode(seed)
            .context("verification.root_key: the seed is not base64")?;
        let root = SigningKey::from_seed(&s.issuer, kid, &seed).context("verification.root_key")?;
        let pinned = crate::hub::keys_by_region(&s.peer_roots, "verification.peer_roots")?;
        let national_root = match s.national_root.trim() {
            "" => None,
            spec => Some(hc_token::pinned_root(spec).with_context(|| {
                format!("verification.national_root: {spec:?} is not region=kid:base64url-key")
            })?),
        };
        anyhow::ensure!(
            s.hub_url.is_empty() || national_root.is_some(),
            "verification.hub_url is set, so verification.national_root must pin the national root key"
        );
        if !s.hub_url.is_empty() {
            tls.check_https("verification.hub_url", &s.hub_url)?;
        }
        Ok(Self {
            current: RwLock::new(Arc::new(Snapshot::default())),
            own: RwLock::new(None),
            peers: RwLock::new(Vec::new()),
            dcc: RwLock::default(),
            national: RwLock::default(),
            national_root,
            hub_url: s.hub_url.trim_end_matches('/').to_owned(),
            started_at: chrono::Utc::now().timestamp(),
            issuer: s.issuer.clone(),
            root,
            pinned,
            own_keys_url: s.own_keys_url.clone(),
            http: tls.http_client().timeout(Duration::from_secs(5)).build()?,
            list_days: s.trust_list_days,
        })
    }

    /// What the hot path reads: one lock, one Arc clone.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.read().map(|s| s.clone()).unwrap_or_default()
    }

    /// The root key's public half, which peers pin.
    pub fn root(&self) -> VerifyingKey {
        self.root.verifying_key()
    }

    /// The pinned root key of another region, if any.
    pub fn pinned(&self, region: &str) -> Option<&VerifyingKey> {
        self.pinned.get(region)
    }

    fn rebuild(&self) {
        let own = self.own.read().ok().and_then(|o| o.clone());
        let mut peers = self.peers.read().map(|p| p.clone()).unwrap_or_default();
        // Bilateral imports first: a region imported by hand keeps its own colour table.
        if let Ok(national) = self.national.read() {
            let now = chrono::Utc::now().timestamp();
            let national: Vec<Issuer> = national
                .issuers(&self.issuer, now)
                .into_iter()
                .filter(|n| !peers.iter().any(|p| p.region == n.region))
                .collect();
            peers.extend(national);
        }
        let dcc = self.dcc.read().map(|d| d.clone()).unwrap_or_default();
        let next = Arc::new(Snapshot::build(own.as_ref(), &peers, dcc));
        if let Ok(mut current) = self.current.write() {
            *current = next;
        }
    }

    /// Fetches our own code keys from rendering.
    pub async fn refresh_own(&self) -> anyhow::Result<()> {
        let published: PublishedKeys = self
            .http
            .get(&self.own_keys_url)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        anyhow::ensure!(
            published.issuer == self.issuer,
            "{} publishes keys of issuer {}, but this platform is {}",
            self.own_keys_url,
            published.issuer,
            self.issuer
        );
        let keys = published
            .keys
            .iter()
            .map(|k| k.verifying_key(&self.issuer))
            .collect::<Result<Vec<_>, _>>()?;
        if let Ok(mut own) = self.own.write() {
            *own = Some(Issuer {
                region: self.issuer.clone(),
                keys,
                colours: None,
            });
        }
        self.rebuild();
        Ok(())
    }

    /// Reloads the imported peers from PostgreSQL (each list re-verified: a row edited by hand is not trusted).
    pub async fn reload_peers(&self, client: &impl GenericClient) -> anyhow::Result<()> {
        let rows = client
            .query("SELECT region, signed, colour_map FROM trust_peers", &[])
            .await?;
        let now = chrono::Utc::now().timestamp();
        let mut peers = Vec::new();
        for row in rows {
            let region: String = row.get(0);
            let Some(root) = self.pinned.get(&region) else {
                tracing::warn!(
                    region,
                    "a stored peer list has no pinned root any more; ignored"
                );
                continue;
            };
            let signed = SignedTrustList {
                format: hc_token::TRUST_LIST_FORMAT.into(),
                signed: row.get(1),
            };
            let colours: ColourMap = serde_json::from_value(row.get(2))?;
            let issuer = signed
                .verify(root, now)
                .map_err(anyhow::Error::from)
                .and_then(|list| peer_issuer(&list, &region));
            match issuer {
                Ok(issuer) => peers.push(Issuer {
                    colours: Some(colours),
                    ..issuer
                }),
                Err(err) => {
                    tracing::warn!(region, error = %err, "a stored peer list no longer verifies; ignored")
                }
            }
        }
        if let Ok(mut current) = self.peers.write() {
            *current = peers;
        }
        self.rebuild();
        Ok(())
    }

    /// Reloads the EU DCC document signers from PostgreSQL (another replica may have replaced them). A stored
    /// certificate that no longer parses is left out, and said.
    pub async fn reload_dcc_signers(&self, client: &impl GenericClient) -> anyhow::Result<()> {
        let signers = crate::db::dcc_signers::all(client)
            .await?
            .iter()
            .filter_map(|der| {
                Signer::from_der(der)
                    .inspect_err(|err| tracing::warn!(error = %err, "a stored DCC signer is unusable; ignored"))
                    .ok()
            })
            .collect::<Vec<_>>();
        if let Ok(mut current) = self.dcc.write() {
            *current = Arc::new(Signers::new(signers));
        }
        self.rebuild();
        Ok(())
    }

    /// With a national hub: uploads our own list to it, then fetches the national list and takes it if it verifies
    /// against the pinned national root and is newer than the one held. A failure of either leaves the held list in
    /// use.
    pub async fn sync_hub(&self) -> anyhow::Result<()> {
        let Some(root) = &self.national_root else {
            return Ok(());
        };
        let pushed = async {
            let response = self
                .http
                .put(format!(
                    "{}/v1/hub/regions/{}/list",
                    self.hub_url, self.issuer
                ))
                .json(&self.signed_own_list()?)
                .send()
                .await?;
            // 409: the hub holds a list of ours signed later (another replica's); nothing to do.
            if !response.status().is_success() && response.status() != reqwest::StatusCode::CONFLICT
            {
                anyhow::bail!(
                    "the hub refused our list: {} {}",
                    response.status(),
                    response.text().await.unwrap_or_default()
                );
            }
            Ok(())
        }
        .await;
        let fetched = async {
            let signed: SignedTrustList = self
                .http
                .get(format!("{}/v1/hub/list", self.hub_url))
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            let now = chrono::Utc::now().timestamp();
            match self.national.write() {
                Ok(mut national) => national.offer(&signed, root, now),
                Err(_) => anyhow::bail!("the national list's lock is poisoned"),
            }
        }
        .await;
        self.rebuild();
        pushed.context("uploading our trust list to the hub")?;
        fetched.context("fetching the national trust list")
    }

    /// Seconds since the national list in use was issued; while none has been taken, seconds since this replica
    /// started, so that a platform that never gets one is alerted on as one whose list stopped refreshing.
    pub fn national_age(&self, now: i64) -> i64 {
        let issued = self
            .national
            .read()
            .ok()
            .and_then(|n| n.list.as_ref().map(|l| l.issued_at));
        now - issued.unwrap_or(self.started_at)
    }

    /// Our signed list with our own issuer only: what the hub takes from it (the hub passes on no other issuer, and a
    /// list naming every region would grow with the country).
    fn signed_own_list(&self) -> anyhow::Result<SignedTrustList> {
        let own = self
            .own
            .read()
            .ok()
            .and_then(|o| o.clone())
            .context("this platform's own keys are not known yet")?;
        self.sign_list(vec![TrustedIssuer {
            region: own.region.clone(),
            keys: own.keys.iter().map(ListedKey::of).collect(),
            colours: None,
        }])
    }

    /// Our signed trust list: our own issuer and every peer's own issuer (trust is not transitive: a peer's list
    /// may name others, which we do not pass on).
    pub fn signed_list(&self) -> anyhow::Result<SignedTrustList> {
        let snapshot = self.snapshot();
        let mut issuers: Vec<TrustedIssuer> = snapshot
            .issuers
            .values()
            .map(|i| TrustedIssuer {
                region: i.region.clone(),
                keys: i.keys.iter().map(ListedKey::of).collect(),
                colours: i.colours.as_ref().map(|map| {
                    map.iter()
                        .map(|(theirs, ours)| (theirs.to_string(), ours.to_string()))
                        .collect()
                }),
            })
            .collect();
        issuers.sort_by(|a, b| a.region.cmp(&b.region));
        self.sign_list(issuers)
    }

    fn sign_list(&self, issuers: Vec<TrustedIssuer>) -> anyhow::Result<SignedTrustList> {
        let now = chrono::Utc::now().timestamp();
        let list = TrustList {
            signer: self.issuer.clone(),
            // Seconds: grows with every list signed here (lists are made on demand, at most one a second apart).
            sequence: u64::try_from(now).unwrap_or_default(),
            issued_at: now,
            expires_at: now + self.list_days * 86_400,
            issuers,
        };
        Ok(list.sign(&self.root)?)
    }

    /// Keeps our own keys fresh until cancelled, and reloads peers (another replica may have imported one).
    pub async fn run_refresh(
        self: Arc<Self>,
        db: Pool,
        keys_every: Duration,
        peers_every: Duration,
        hub_every: Duration,
        cancel: CancellationToken,
    ) {
        let mut hub_tick = tokio::time::interval(hub_every);
        // Start-up loaded the peers already.
        let mut peers_tick =
            tokio::time::interval_at(tokio::time::Instant::now() + peers_every, peers_every);
        let mut keys_due = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep_until(keys_due) => {
                    keys_due = match self.refresh_own().await {
                        Ok(()) => tokio::time::Instant::now() + keys_every,
                        Err(err) => {
                            // Rendering may start after us: try again soon.
                            tracing::warn!(error = %err, "fetching this platform's code keys failed");
                            tokio::time::Instant::now() + Duration::from_secs(1)
                        }
                    };
                }
                _ = hub_tick.tick(), if !self.hub_url.is_empty() => {
                    if let Err(err) = self.sync_hub().await {
                        metrics::counter!("verification_trust_list_refresh_failures_total").increment(1);
                        tracing::warn!(error = format!("{err:#}"), "syncing with the national hub failed; the list held stays in use");
                    }
                    let age = self.national_age(chrono::Utc::now().timestamp());
                    metrics::gauge!("verification_trust_list_age_seconds").set(age as f64);
                }
                _ = peers_tick.tick() => {
                    let reloaded = async {
                        let client = db.get().await?;
                        self.reload_peers(&client).await?;
                        self.reload_dcc_signers(&client).await
                    };
                    if let Err(err) = reloaded.await {
                        tracing::warn!(error = %err, "reloading peer trust lists or DCC signers failed");
                    }
                }
            }
        }
    }
}

/// The national trust list in use.
#[derive(Debug, Default)]
pub struct National {
    pub list: Option<TrustList>,
}

impl National {
    /// Offers a fetched list: taken only when it verifies against the pinned national root, has not expired, and
    /// is not older than the one held. Otherwise the held list stays in use: an expired or unverifiable list never
    /// replaces a good one.
    pub fn offer(
        &mut self,
        signed: &SignedTrustList,
        root: &VerifyingKey,
        now: i64,
    ) -> anyhow::Result<()> {
        let list = signed.verify(root, now)?;
        if let Some(held) = &self.list {
            anyhow::ensure!(
                list.sequence >= held.sequence,
                "the national list offered (sequence {}) is older than the one held ({})",
                list.sequence,
                held.sequence
            );
        }
        self.list = Some(list);
        Ok(())
    }

    /// The issuers on the list, but this platform's own (its keys come from its own rendering service), while the
    /// list has not expired. An issuer whose colour table does not parse is left out.
    pub fn issuers(&self, own: &str, now: i64) -> Vec<Issuer> {
        let Some(list) = self.list.as_ref().filter(|l| l.expires_at > now) else {
            return Vec::new();
        };
        list.issuers
            .iter()
            .filter(|entry| entry.region != own)
            .filter_map(|entry| {
                let keys = entry
                    .keys
                    .iter()
                    .map(|k| k.verifying_key(&entry.region))
                    .collect::<Result<Vec<_>, _>>()
                    .ok()?;
                let colours = match &entry.colours {
                    Some(table) => colour_table(|c| table.get(c).map(String::as_str)).ok()?,
                    None => [Colour::Green, Colour::Yellow, Colour::Orange, Colour::Red]
                        .map(|c| (c, c))
                        .into_iter()
                        .collect(),
                };
                Some(Issuer {
                    region: entry.region.clone(),
                    keys,
                    colours: Some(colours),
                })
            })
            .collect()
    }
}

/// A colour table: every colour an issuer may issue (green, yellow, orange, red), read through `get`, mapped to ours.
/// A mapping may read a colour as stricter, never as milder: a peer's red is never our green. The error names the
/// colour and says why.
pub fn colour_table<'a>(
    get: impl Fn(&str) -> Option<&'a str>,
) -> Result<ColourMap, (String, String)> {
    let mut colours = HashMap::new();
    for theirs in [Colour::Green, Colour::Yellow, Colour::Orange, Colour::Red] {
        let ours = get(theirs.as_str())
            .ok_or_else(|| {
                (
                    theirs.to_string(),
                    "is required: every colour the issuer may issue is mapped".to_owned(),
                )
            })?
            .parse::<Colour>()
            .map_err(|e| (theirs.to_string(), e.reason.to_string()))?;
        // Orange reads as yellow where a scale has no orange.
        if ours < theirs && !(theirs == Colour::Orange && ours == Colour::Yellow) {
            return Err((
                theirs.to_string(),
                format!("{ours} is milder than {theirs}"),
            ));
        }
        colours.insert(theirs, ours);
    }
    Ok(colours)
}

/// The peer's own issuer entry on its list.
pub fn peer_issuer(list: &TrustList, region: &str) -> anyhow::Result<Issuer> {
    let entry = list
        .issuers
        .iter()
        .find(|i| i.region == region)
        .with_context(|| format!("the list of {region} does not list {region}'s own keys"))?;
    let keys = entry
        .keys
        .iter()
        .map(|k| k.verifying_key(region))
        .collect::<Result<Vec<_>, _>>()?;
    anyhow::ensure!(
        !keys.is_empty(),
        "the list of {region} has no keys for {region}"
    );
    Ok(Issuer {
        region: region.to_owned(),
        keys,
        colours: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn national_root() -> SigningKey {
        SigningKey::from_seed("100000", "cn-root", &[21; 32]).expect("root")
    }

    fn list(sequence: u64, issued_at: i64, expires_at: i64, kid: &str) -> TrustList {
        let key = SigningKey::from_seed("610100", kid, &[22; 32]).expect("key");
        TrustList {
            signer: "100000".into(),
            sequence,
            issued_at,
            expires_at,
            issuers: vec![
                TrustedIssuer {
                    region: "610100".into(),
                    keys: vec![ListedKey::of(&key.verifying_key())],
                    colours: Some(
                        [
                            ("green", "green"),
                            ("yellow", "yellow"),
                            ("orange", "red"),
                            ("red", "red"),
                        ]
                        .map(|(a, b)| (a.to_owned(), b.to_owned()))
                        .into(),
                    ),
                },
                TrustedIssuer {
                    region: "440100".into(),
                    keys: vec![],
                    colours: None,
                },
            ],
        }
    }

    #[test]
    fn only_a_newer_verified_unexpired_list_replaces_the_one_held() {
        let root = national_root();
        let pinned = root.verifying_key();
        let mut national = National::default();
        national
            .offer(
                &list(10, 1_000, 2_000, "xa-1").sign(&root).expect("sign"),
                &pinned,
                1_500,
            )
            .expect("taken");

        // Signed by another key, expired, or older: refused, and the held list stays.
        let impostor = SigningKey::from_seed("100000", "cn-root", &[23; 32]).expect("key");
        assert!(
            national
                .offer(
                    &list(11, 1_600, 3_000, "xa-2")
                        .sign(&impostor)
                        .expect("sign"),
                    &pinned,
                    1_700
                )
                .is_err()
        );
        assert!(
            national
                .offer(
                    &list(12, 1_000, 1_700, "xa-2").sign(&root).expect("sign"),
                    &pinned,
                    1_700
                )
                .is_err()
        );
        assert!(
            national
                .offer(
                    &list(9, 1_600, 3_000, "xa-2").sign(&root).expect("sign"),
                    &pinned,
                    1_700
                )
                .is_err()
        );
        let held = national.issuers("440100", 1_700);
        assert_eq!(held.len(), 1, "our own region is not taken from the list");
        assert_eq!(held[0].keys[0].kid, "xa-1");
        // The region's colour table is read as the list says: its orange is red here.
        assert_eq!(
            held[0]
                .colours
                .as_ref()
                .and_then(|c| c.get(&Colour::Orange)),
            Some(&Colour::Red)
        );

        // A newer one is taken; once the held list has expired, nothing on it is trusted.
        national
            .offer(
                &list(13, 1_800, 2_500, "xa-3").sign(&root).expect("sign"),
                &pinned,
                1_900,
            )
            .expect("taken");
        assert_eq!(national.issuers("440100", 1_900)[0].keys[0].kid, "xa-3");
        assert!(national.issuers("440100", 2_500).is_empty());
    }
}
