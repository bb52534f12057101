//! JSON logs through `tracing`, and OpenTelemetry traces over OTLP/HTTP when an endpoint is configured.
//! W3C trace context is the propagator, so a `traceparent` header in is honoured and one goes out.

use anyhow::Context;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::settings::TelemetrySettings;

/// Flushes pending spans when dropped; keep it alive for the life of `main`.
#[must_use]
pub struct TelemetryGuard(Option<SdkTracerProvider>);

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.0.take() {
            let _ = provider.shutdown();
        }
    }
}

/// Installs the global subscriber writing JSON lines to stdout.
pub fn init(service: &'static str, settings: &TelemetrySettings) -> anyhow::Result<TelemetryGuard> {
    init_with_writer(service, settings, std::io::stdout)
}

/// Installs the global subscriber with a chosen writer (tests capture logs this way). A second call in the
/// same process keeps the first subscriber.
pub fn init_with_writer<W>(
    service: &'static str,
    settings: &TelemetrySettings,
    writer: W,
) -> anyhow::Result<TelemetryGuard>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let filter = EnvFilter::try_new(&settings.log_filter).context("telemetry.log_filter")?;
    let json = tracing_subscriber::fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_writer(writer)
        .with_filter(filter);

    // A tracer provider is always installed, so trace context flows through requests and events (and log lines
    // carry the span) even without a collector. Without one, root spans are not sampled (cheap, non-recording) but
    // still get ids; with one, every span is exported.
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(service)
        .build();
    let mut builder = SdkTracerProvider::builder().with_resource(resource);
    if settings.otlp_endpoint.is_empty() {
        builder = builder.with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOff)));
    } else {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(settings.otlp_endpoint.clone())
            .build()
            .context("telemetry.otlp_endpoint")?;
        builder = builder.with_batch_exporter(exporter);
    }
    let provider = Some(builder.build());
    let otel = provider.as_ref().map(|p| {
        opentelemetry::global::set_tracer_provider(p.clone());
        // Spans and events at INFO and above: a DEBUG event (the access log of every successful request) would
        // otherwise be formatted into a span event on every request, whether the log filter shows it or not.
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer(service))
            .with_filter(tracing_subscriber::filter::LevelFilter::INFO)
    });

    let installed = tracing_subscriber::registry()
        .with(json)
        .with(otel)
        .try_init();
    if installed.is_err() {
        tracing::debug!("telemetry already initialised in this process");
    }
    Ok(TelemetryGuard(provider))
}
