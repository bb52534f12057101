//! `hc-hub`: the national trust hub (docs/interop.md). `hc-hub generate-secrets` prints a development national root.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    hc_platform::service::main::<verification::hub::Hub>().await
}
