//! `GET /health/live` (the process answers) and `GET /health/ready` (PostgreSQL and Redis answer, each named).

use std::time::Duration;

use actix_web::{HttpResponse, web};
use deadpool_postgres::Pool;
use serde_json::json;

use crate::store::Store;

const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// What readiness checks; a service without PostgreSQL leaves `db` empty.
#[derive(Clone)]
pub struct Dependencies {
    pub db: Option<Pool>,
    pub redis: Option<Store>,
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/health/live", web::get().to(live))
        .route("/health/ready", web::get().to(ready));
}

async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "live" }))
}

async fn ready(deps: web::Data<Dependencies>) -> HttpResponse {
    let (pg, redis) = tokio::join!(
        check_postgres(deps.db.as_ref()),
        check_redis(deps.redis.as_ref())
    );
    let mut checks = serde_json::Map::new();
    let mut all_ok = true;
    for (name, outcome) in [("postgres", pg), ("redis", redis)] {
        if let Some(ok) = outcome {
            all_ok &= ok;
            checks.insert(name.into(), json!(if ok { "ok" } else { "unreachable" }));
        }
    }
    let body = json!({ "status": if all_ok { "ready" } else { "not_ready" }, "checks": checks });
    if all_ok {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

async fn check_postgres(pool: Option<&Pool>) -> Option<bool> {
    let pool = pool?;
    let probe = async {
        let client = pool.get().await.ok()?;
        client.simple_query("SELECT 1").await.ok()
    };
    Some(matches!(
        tokio::time::timeout(PROBE_TIMEOUT, probe).await,
        Ok(Some(_))
    ))
}

async fn check_redis(store: Option<&Store>) -> Option<bool> {
    let store = store?;
    Some(matches!(
        tokio::time::timeout(PROBE_TIMEOUT, store.ping()).await,
        Ok(Ok(()))
    ))
}
