//! The authorization matrix over every operation of the service's route table (its OpenAPI document).

use crate::helpers::spawn_app;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_answers_every_caller_as_its_document_says() {
    let app = spawn_app().await;
    let callers = app.identity.callers("verify").await;
    hc_platform::access_matrix::assert_holds(&app.http, &app.address, &callers).await;
}
