//! The authorization matrix over every operation of the service's route table (its OpenAPI document).

use hc_platform::testing::TestSuite;
use identity::testing::TestIdentity;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_answers_every_caller_as_its_document_says() {
    let suite = TestSuite::new().await;
    let identity = TestIdentity::start(&suite).await;
    let callers = identity.callers("import:nat").await;
    hc_platform::access_matrix::assert_holds(&suite.http, &identity.address, &callers).await;
}
