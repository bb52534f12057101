//! The declaration service's binary (`declaration generate-secrets` prints development secrets where it has any).

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    hc_platform::service::main::<declaration::Declaration>().await
}
