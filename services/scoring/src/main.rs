use scoring::{Application, ScoringSettings};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings: hc_platform::settings::Settings<ScoringSettings> =
        hc_platform::settings::load(scoring::DEFAULT_CONFIG, "scoring")?;
    let _telemetry = hc_platform::telemetry::init("scoring", &settings.platform.telemetry)?;
    let app = Application::build(settings).await?;
    tracing::info!(port = app.port(), "scoring listening");
    app.run_until_stopped().await
}
