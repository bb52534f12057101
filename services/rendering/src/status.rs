//! Where a person's current status comes from: Redis (what scoring keeps there for the hot paths), else scoring
//! itself (with a timeout, behind the breaker), else the last status this replica saw, flagged stale. Each of these
//! is a switch, off in the naive profile.

use std::time::Duration;

use chrono::{DateTime, Utc};
use hc_platform::error::ApiError;
use hc_platform::status_document;
use hc_platform::store::Store;
use hc_platform::tls::Tls;
use uuid::Uuid;

use crate::settings::RenderingSettings;
use hc_platform::breaker::Breaker;

/// The part of scoring's status view a code needs: the status document's fields every reader relies on.
pub use hc_platform::status_document::CurrentStatus as Status;

#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "lowercase")]
pub enum Source {
    Redis,
    Scoring,
    /// The last status known here, read from Redis or scoring at `since`: scoring could not be asked now.
    Stale {
        since: DateTime<Utc>,
    },
}

impl Source {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn stale_since(self) -> Option<DateTime<Utc>> {
        match self {
            Source::Stale { since } => Some(since),
            _ => None,
        }
    }
}

pub struct StatusSource {
    store: Store,
    http: reqwest::Client,
    scoring_url: String,
    from_redis: bool,
    stale_fallback: bool,
    stale_max_age: chrono::Duration,
    breaker: Breaker,
    pulse: std::sync::Arc<crate::pulse::ScoringPulse>,
    /// Each person's last status read here, and when it was read.
    last_known: quick_cache::sync::Cache<Uuid, (Status, DateTime<Utc>)>,
}

impl StatusSource {
    pub fn new(
        store: Store,
        s: &RenderingSettings,
        tls: &Tls,
        pulse: std::sync::Arc<crate::pulse::ScoringPulse>,
    ) -> anyhow::Result<Self> {
        tls.check_https("rendering.scoring_url", &s.scoring_url)?;
        Ok(Self {
            store,
            http: tls
                .http_client()
                .timeout(Duration::from_millis(s.scoring_timeout_ms))
                .build()?,
            scoring_url: s.scoring_url.trim_end_matches('/').to_owned(),
            from_redis: s.status_from_redis,
            stale_fallback: s.stale_fallback_enabled,
            stale_max_age: chrono::Duration::seconds(s.stale_max_age_seconds as i64),
            breaker: Breaker::new(
                "rendering_scoring_breaker_open",
                s.breaker_enabled,
                s.breaker_failures,
                Duration::from_millis(s.breaker_open_ms),
            ),
            pulse,
            last_known: quick_cache::sync::Cache::new(s.last_known_capacity.max(1)),
        })
    }

    /// When scoring went silent (its last beat), if it has: the documents in Redis are then as of that time, and
    /// no render cached while it was beating may be served.
    pub fn scoring_silent_since(&self) -> Option<DateTime<Utc>> {
        self.pulse.silent_since().filter(|_| self.stale_fallback)
    }

    /// The person's current status. `bearer` is the citizen's own access token, passed on to scoring.
    pub async fn current(&self, person: Uuid, bearer: &str) -> Result<(Status, Source), ApiError> {
        if self.from_redis {
            match status_document::read(&self.store, person).await {
                Ok(Some(status)) => {
                    return match self.scoring_silent_since() {
                        None => Ok((self.remember(person, status, Utc::now()), Source::Redis)),
                        // The document is the last status scoring kept, as of its last beat; past the age a gate
                        // could trust, no code at all rather than one whose colour may have changed since.
                        Some(since) if Utc::now() - since <= self.stale_max_age => Ok((
                            self.remember(person, status, since),
                            Source::Stale { since },
                        )),
                        Some(_) => Err(ApiError::Unavailable {
                            what: "the status service",
                            retry_after: 2,
                        }),
                    };
                }
                Ok(None) => {}
                Err(err) => {
                    tracing::warn!(error = %err, "reading a status from Redis failed; asking scoring")
                }
            }
        }
        match self.ask_scoring(bearer).await {
            Ok(Some(status)) => Ok((self.remember(person, status, Utc::now()), Source::Scoring)),
            Ok(None) => Err(ApiError::NotFound { what: "status" }),
            Err(err) => {
                tracing::warn!(error = %err, "scoring did not answer");
                // Signed with its time, and only while it is recent enough to be worth a gate's trust.
                let last = self.last_known.get(&person).filter(|(_, since)| {
                    self.stale_fallback && Utc::now() - *since <= self.stale_max_age
                });
                match last {
                    Some((status, since)) => Ok((status, Source::Stale { since })),
                    None => Err(ApiError::Unavailable {
                        what: "the status service",
                        retry_after: 2,
                    }),
                }
            }
        }
    }

    /// Keeps `status` as the person's last known, current as of `at`.
    fn remember(&self, person: Uuid, status: Status, at: DateTime<Utc>) -> Status {
        if self.stale_fallback {
            self.last_known.insert(person, (status.clone(), at));
        }
        status
    }

    async fn ask_scoring(&self, bearer: &str) -> anyhow::Result<Option<Status>> {
        if !self.breaker.allow() {
            metrics::counter!("rendering_scoring_calls_total", "outcome" => "breaker_open")
                .increment(1);
            anyhow::bail!("the breaker is open");
        }
        let request = self
            .http
            .get(format!("{}/v1/status/me", self.scoring_url))
            .bearer_auth(bearer);
        let outcome = async {
            let response = hc_platform::http::with_trace_context(request)
                .send()
                .await?;
            match response.status() {
                reqwest::StatusCode::NOT_FOUND => Ok(None),
                s if s.is_success() => Ok(Some(response.json::<Status>().await?)),
                s => anyhow::bail!("scoring answered {s}"),
            }
        }
        .await;
        // A 404 is an answer (no status yet), not a failure of scoring.
        self.breaker.record(outcome.is_ok());
        let label = match &outcome {
            Ok(_) => "ok",
            Err(_) => "failed",
        };
        metrics::counter!("rendering_scoring_calls_total", "outcome" => label).increment(1);
        outcome
    }
}
