use declaration::{Application, DeclarationSettings};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings: hc_platform::settings::Settings<DeclarationSettings> =
        hc_platform::settings::load(declaration::DEFAULT_CONFIG, "declaration")?;
    let _telemetry = hc_platform::telemetry::init("declaration", &settings.platform.telemetry)?;
    let app = Application::build(settings).await?;
    tracing::info!(port = app.port(), "declaration listening");
    app.run_until_stopped().await
}
