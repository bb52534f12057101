use verification::{Application, VerificationSettings};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if std::env::args().nth(1).as_deref() == Some("generate-secrets") {
        print!("{}", verification::generate_secrets()?);
        return Ok(());
    }
    let settings: hc_platform::settings::Settings<VerificationSettings> =
        hc_platform::settings::load(verification::DEFAULT_CONFIG, "verification")?;
    let _telemetry = hc_platform::telemetry::init("verification", &settings.platform.telemetry)?;
    let app = Application::build(settings).await?;
    tracing::info!(port = app.port(), "verification listening");
    app.run_until_stopped().await
}
