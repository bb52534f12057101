//! Prometheus metrics: one process-wide recorder, rendered at `GET /metrics`. Labels are route templates and
//! status classes only, never raw paths (a path can hold an ID number).

use std::sync::OnceLock;

use actix_web::{HttpResponse, web};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Latency buckets in seconds: fine below 10 ms, where the hot paths live, coarse above.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Buckets for batch sizes (a group commit's scans).
const BATCH_BUCKETS: &[f64] = &[
    1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide handle; installs the recorder on first use.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
            .expect("static bucket list is not empty")
            .set_buckets_for_metric(Matcher::Suffix("_batch_size".into()), BATCH_BUCKETS)
            .expect("static bucket list is not empty")
            .install_recorder()
            .expect("the only place that installs a metrics recorder")
    })
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(render));
}

async fn render() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(handle().render())
}

/// Records one HTTP request.
pub fn record_request(method: &str, route: &str, status: u16, seconds: f64) {
    let class = match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    // The handles are looked up in the recorder once per worker thread and label set, not on every request: the
    // lookup hashes and allocates its labels, a measurable share of a cached hot-path request.
    thread_local! {
        // route -> (method, status class, handles): found by borrowing, so a hit allocates nothing.
        static HANDLES: std::cell::RefCell<Handles> = std::cell::RefCell::new(Handles::new());
    }
    HANDLES.with(|handles| {
        let mut handles = handles.borrow_mut();
        if !handles.contains_key(route) {
            handles.insert(route.to_owned(), Vec::new());
        }
        let Some(entries) = handles.get_mut(route) else {
            return;
        };
        let at = match entries.iter().position(|(m, c, _, _)| m == method && *c == class) {
            Some(at) => at,
            None => {
                entries.push((
                    method.to_owned(),
                    class,
                    metrics::counter!("http_requests_total", "method" => method.to_owned(), "route" => route.to_owned(), "status" => class),
                    metrics::histogram!("http_request_duration_seconds", "method" => method.to_owned(), "route" => route.to_owned()),
                ));
                entries.len() - 1
            }
        };
        let (_, _, counter, histogram) = &entries[at];
        counter.increment(1);
        histogram.record(seconds);
    });
}

type Handles = std::collections::HashMap<
    String,
    Vec<(String, &'static str, metrics::Counter, metrics::Histogram)>,
>;
