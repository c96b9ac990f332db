//! The committed OpenAPI document is served, and it cannot drift from the service: every documented
//! route exists with its method, and every documented enum value is one the shared types know.

#![allow(clippy::unwrap_used)]

mod common;

use common::TestService;
use cryptera_proto::error::{ErrorBody, ErrorCode};
use cryptera_proto::keys::{KeyAlgorithm, Mechanism};
use reqwest::{Method, StatusCode};

fn enum_values(doc: &serde_json::Value, schema: &str) -> Vec<String> {
    doc["components"]["schemas"][schema]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_route_exists() {
    let service = TestService::start().await;
    let response = service
        .client
        .get(service.url("/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let doc: serde_json::Value = response.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    let mut documented: Vec<&str> = paths.keys().map(String::as_str).collect();
    let mut shared = cryptera_proto::paths::ALL.to_vec();
    documented.sort_unstable();
    shared.sort_unstable();
    assert_eq!(
        documented, shared,
        "OpenAPI paths and cryptera_proto::paths::ALL differ"
    );
    for (path, methods) in paths {
        for method in methods.as_object().unwrap().keys() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let url = service.url(&path.replace("{id}", "x"));
            let response = service
                .client
                .request(method.clone(), url)
                .json(&serde_json::json!({}))
                .send()
                .await
                .unwrap();
            let status = response.status();
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            if status == StatusCode::NOT_FOUND {
                let body: ErrorBody = response.json().await.unwrap();
                assert!(
                    !body.error.message.starts_with("endpoint"),
                    "{method} {path} is not routed"
                );
            }
        }
    }
}

#[test]
fn documented_enums_match_the_shared_types() {
    let doc: serde_json::Value = serde_json::from_str(cryptera_backend::api::OPENAPI_JSON).unwrap();
    let codes: Vec<String> = doc["components"]["schemas"]["ErrorBody"]["properties"]["error"]
        ["properties"]["code"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    let known: Vec<String> = ErrorCode::ALL
        .iter()
        .map(|code| {
            serde_json::to_value(code)
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        codes, known,
        "the documented error codes are exactly ErrorCode::ALL"
    );
    let mechanisms: Vec<&str> = Mechanism::ALL.iter().map(|m| m.as_str()).collect();
    assert_eq!(enum_values(&doc, "Mechanism"), mechanisms);
    let algorithms: Vec<&str> = KeyAlgorithm::ALL.iter().map(|a| a.as_str()).collect();
    assert_eq!(enum_values(&doc, "KeyAlgorithm"), algorithms);
}
