//! `dcc_signers`: the EU DCC document signer certificates trusted here.

use deadpool_postgres::GenericClient;

/// Replaces the whole set (in the caller's transaction).
pub async fn replace(
    client: &impl GenericClient,
    certificates: &[(Vec<u8>, [u8; 8])],
    by: &str,
) -> Result<(), tokio_postgres::Error> {
    let ders: Vec<&[u8]> = certificates.iter().map(|(der, _)| der.as_slice()).collect();
    let kids: Vec<&[u8]> = certificates.iter().map(|(_, kid)| kid.as_slice()).collect();
    client.execute("DELETE FROM dcc_signers", &[]).await?;
    client
        .execute(
            "INSERT INTO dcc_signers (der, kid, added_by)
             SELECT der, kid, $3 FROM unnest($1::bytea[], $2::bytea[]) AS s (der, kid)",
            &[&ders, &kids, &by],
        )
        .await?;
    Ok(())
}

/// Every certificate, as stored.
pub async fn all(client: &impl GenericClient) -> Result<Vec<Vec<u8>>, tokio_postgres::Error> {
    let rows = client.query("SELECT der FROM dcc_signers", &[]).await?;
    Ok(rows.iter().map(|row| row.get(0)).collect())
}
