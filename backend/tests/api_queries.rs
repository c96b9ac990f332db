//! Query strings the handlers cannot read answer the JSON `invalid_request` body on every route that
//! takes one (found by schemathesis: the device routes answered axum's plain-text rejection).

#![allow(clippy::unwrap_used)]

mod common;

use common::{dev_token, expect_error, TestService};
use cryptera_proto::auth::Operation;
use cryptera_proto::error::ErrorCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_query_strings_answer_invalid_request_as_json() {
    let service = TestService::start().await;
    let org = service.org("acme");
    let reader = dev_token(&service, &org, &Operation::ALL);
    for path in [
        "/v1/devices?limit=null",
        "/v1/devices/export?limit=-1",
        "/v1/audit/records?after=-1",
        "/v1/signing-requests?status=bogus",
    ] {
        let response = service.get(&reader, path).await;
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            content_type.starts_with("application/json"),
            "{path}: {content_type}"
        );
        expect_error(response, ErrorCode::InvalidRequest).await;
    }
}
