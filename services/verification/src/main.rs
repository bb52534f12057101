//! The verification service's binary (`verification generate-secrets` prints development secrets where it has any).

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    hc_platform::service::main::<verification::Verification>().await
}
