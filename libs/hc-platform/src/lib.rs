//! Runtime plumbing shared by every service, and no domain logic: typed settings, telemetry, Prometheus
//! metrics, health probes, the PostgreSQL pool and migrations, the prefixed Redis handle, problem+json
//! errors, access-token verification and scope extractors, and the load defences of architecture section 4.

#[cfg(feature = "testing")]
pub mod access_matrix;
pub mod admission;
pub mod audit;
pub mod auth;
pub mod breaker;
pub mod db;
pub mod defences;
pub mod error;
pub mod events;
pub mod exchange;
pub mod health;
pub mod http;
pub mod metrics;
pub mod openapi;
pub mod outbox;
pub mod privacy;
pub mod revocation;
pub mod service;
pub mod settings;
pub mod status_document;
pub mod store;
pub mod streams;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tls;
pub mod unread_body;

pub use error::ApiError;
