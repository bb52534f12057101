//! The scoring service's binary (`scoring generate-secrets` prints development secrets where it has any).

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    hc_platform::service::main::<scoring::Scoring>().await
}
