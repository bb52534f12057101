use rendering::{Application, RenderingSettings};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if std::env::args().nth(1).as_deref() == Some("generate-secrets") {
        print!("{}", rendering::generate_secrets()?);
        return Ok(());
    }
    let settings: hc_platform::settings::Settings<RenderingSettings> =
        hc_platform::settings::load(rendering::DEFAULT_CONFIG, "rendering")?;
    let _telemetry = hc_platform::telemetry::init("rendering", &settings.platform.telemetry)?;
    let app = Application::build(settings).await?;
    tracing::info!(port = app.port(), "rendering listening");
    app.run_until_stopped().await
}
