//! The identity service's binary: `identity generate-secrets` prints development secrets, `identity
//! provision-database` makes its database role, `identity reencrypt` and `identity reindex` rotate the data and
//! blind-index keys (docs/deploy.md, "Rotate keys"); without arguments it serves.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if let Some(outcome) = identity::rotation::command().await {
        return outcome;
    }
    hc_platform::service::main::<identity::Identity>().await
}
