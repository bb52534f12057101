use identity::{Application, IdentitySettings, generate_secrets};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if std::env::args().nth(1).as_deref() == Some("generate-secrets") {
        print!("{}", generate_secrets()?);
        return Ok(());
    }
    let settings: hc_platform::settings::Settings<IdentitySettings> =
        hc_platform::settings::load(identity::DEFAULT_CONFIG, "identity")?;
    let _telemetry = hc_platform::telemetry::init("identity", &settings.platform.telemetry)?;
    let app = Application::build(settings).await?;
    tracing::info!(port = app.port(), "identity listening");
    app.run_until_stopped().await
}
