//! The defences of architecture section 4 that live in every service, each a config switch so that the
//! naive profile can turn it off and a load test can show what it prevents: admission control, a request
//! timeout, and per-IP and per-key rate limits.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use crate::admission::Admission;
use crate::error::ApiError;
use crate::settings::PlatformSettings;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpRequest, web};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

pub struct Defences {
    admission: Option<Arc<Admission>>,
    retry_after: u64,
    timeout: Option<Duration>,
    timeout_exempt: Vec<String>,
    ip_limiter: Option<DefaultKeyedRateLimiter<IpAddr>>,
    key_limiter: Option<DefaultKeyedRateLimiter<String>>,
    proxies: TrustedProxies,
}

/// The proxies whose `X-Forwarded-For` is believed (`server.trusted_proxies`).
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<ipnet::IpNet>);

impl TrustedProxies {
    /// Reads "10.0.0.0/8, 192.168.1.7": ranges, or single addresses.
    pub fn parse(list: &str) -> anyhow::Result<Self> {
        let nets = crate::settings::list(list)
            .map(|s| {
                s.parse::<ipnet::IpNet>()
                    .or_else(|_| s.parse::<IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        anyhow::anyhow!(
                            "server.trusted_proxies: {s:?} is not an address or a range"
                        )
                    })
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Self(nets))
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client's address: the peer's, unless the peer is one of our proxies; then the right-most address of
    /// `X-Forwarded-For` that is not one of ours (those left of it were written by the client and prove nothing).
    pub fn client_ip(&self, req: &HttpRequest) -> Option<IpAddr> {
        let peer = req.peer_addr()?.ip();
        if !self.trusts(peer) {
            return Some(peer);
        }
        let forwarded = req
            .headers()
            .get_all("x-forwarded-for")
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|s| s.trim().parse::<IpAddr>())
            .collect::<Result<Vec<_>, _>>();
        match forwarded {
            // A header we cannot read is not believed in part: the proxy itself is the client.
            Err(_) => Some(peer),
            Ok(hops) => Some(
                hops.into_iter()
                    .rev()
                    .find(|ip| !self.trusts(*ip))
                    .unwrap_or(peer),
            ),
        }
    }
}

/// The client's address as the service's [`TrustedProxies`] see it (the peer's where none are configured).
pub fn client_ip(req: &HttpRequest) -> Option<IpAddr> {
    match req.app_data::<web::Data<Defences>>() {
        Some(d) => d.proxies.client_ip(req),
        None => req.peer_addr().map(|p| p.ip()),
    }
}

fn limiter<K: std::hash::Hash + Eq + Clone>(
    per_second: u32,
    burst: u32,
) -> Option<DefaultKeyedRateLimiter<K>> {
    let rate = NonZeroU32::new(per_second)?;
    let burst = NonZeroU32::new(burst.max(per_second)).unwrap_or(rate);
    Some(RateLimiter::keyed(
        Quota::per_second(rate).allow_burst(burst),
    ))
}

impl Defences {
    pub fn from_settings(settings: &PlatformSettings) -> anyhow::Result<Self> {
        Ok(Self {
            admission: Admission::from_settings(&settings.admission),
            retry_after: settings.admission.retry_after_seconds.max(1),
            timeout: (settings.timeouts.request_ms > 0)
                .then(|| Duration::from_millis(settings.timeouts.request_ms)),
            timeout_exempt: crate::settings::list(&settings.timeouts.exempt_prefixes)
                .map(str::to_owned)
                .collect(),
            ip_limiter: limiter(
                settings.rate_limit.per_ip_per_second,
                settings.rate_limit.per_ip_burst,
            ),
            key_limiter: limiter(
                settings.rate_limit.per_key_per_second,
                settings.rate_limit.per_key_burst,
            ),
            proxies: TrustedProxies::parse(&settings.server.trusted_proxies)?,
        })
    }

    /// Charges one request to an API key's bucket (called by the `Official` extractor once the key is known).
    pub fn check_key(&self, key: &str) -> Result<(), ApiError> {
        charge(self.key_limiter.as_ref(), &key.to_owned())
    }

    /// Routes that bound themselves (long streamed uploads): no request timeout, and their time says nothing
    /// about a queue.
    fn timeout_exempt(&self, path: &str) -> bool {
        self.timeout_exempt
            .iter()
            .any(|p| path.starts_with(p.as_str()))
    }

    fn check_ip(&self, ip: IpAddr) -> Result<(), ApiError> {
        charge(self.ip_limiter.as_ref(), &ip)
    }

    /// Forgets idle buckets so that the keyed limiters do not grow with every address ever seen.
    pub fn forget_idle_buckets(&self) {
        if let Some(l) = &self.ip_limiter {
            l.retain_recent();
        }
        if let Some(l) = &self.key_limiter {
            l.retain_recent();
        }
    }
}

/// Takes one token from `key`'s bucket; an empty bucket is a 429 saying when the next token comes.
fn charge<K: std::hash::Hash + Eq + Clone>(
    limiter: Option<&DefaultKeyedRateLimiter<K>>,
    key: &K,
) -> Result<(), ApiError> {
    match limiter {
        Some(limiter) => limiter
            .check_key(key)
            .map_err(|not_until| ApiError::TooManyRequests {
                retry_after: not_until
                    .wait_time_from(DefaultClock::default().now())
                    .as_secs()
                    .max(1),
            }),
        None => Ok(()),
    }
}

/// Health and metrics stay reachable under any load: an orchestrator must be able to see an overloaded pod.
fn exempt(path: &str) -> bool {
    path.starts_with("/health/") || path == "/metrics"
}

fn defences_of(req: &ServiceRequest) -> Option<web::Data<Defences>> {
    req.app_data::<web::Data<Defences>>().cloned()
}

/// Beyond the admission limit (adaptive, at most `admission.max_inflight` in flight), answer 503 + Retry-After at
/// once: a fast "no" keeps latency bounded for the requests that are admitted, where a queue would make every
/// request slow.
pub async fn admission(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let _permit = match defences_of(&req) {
        Some(d) if !exempt(req.path()) => match &d.admission {
            Some(admission) => Some(
                admission
                    .try_admit(!d.timeout_exempt(req.path()))
                    .ok_or_else(|| {
                        metrics::counter!("http_requests_shed_total", "reason" => "admission")
                            .increment(1);
                        ApiError::Overloaded {
                            retry_after: d.retry_after,
                        }
                    })?,
            ),
            None => None,
        },
        _ => None,
    };
    next.call(req).await
}

/// Bounds one request's handling time; past it the client gets 503 rather than waiting on a stuck dependency.
pub async fn timeout(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let limit = defences_of(&req).and_then(|d| d.timeout.filter(|_| !d.timeout_exempt(req.path())));
    match limit {
        Some(limit) => tokio::time::timeout(limit, next.call(req))
            .await
            .map_err(|_| {
                metrics::counter!("http_requests_shed_total", "reason" => "timeout").increment(1);
                ApiError::Timeout
            })?,
        None => next.call(req).await,
    }
}

/// Per-client-IP token bucket. The client is the peer, or the address a trusted proxy forwarded (never an
/// `X-Forwarded-For` from anyone else: any client can write one).
pub async fn rate_limit_by_ip(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if let Some(d) = defences_of(&req)
        && let Some(ip) = d.proxies.client_ip(req.request())
        && !exempt(req.path())
    {
        d.check_ip(ip)?;
    }
    next.call(req).await
}
