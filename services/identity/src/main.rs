//! The identity service's binary (`identity generate-secrets` prints development secrets where it has any).

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    hc_platform::service::main::<identity::Identity>().await
}
