//! The rendering service's binary (`rendering generate-secrets` prints development secrets where it has any).

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    hc_platform::service::main::<rendering::Rendering>().await
}
