//! What the OpenAPI document the entry point serves says about errors and limits, and
//! instants the document's `date-time` can describe.

use goodsmall_platform::error::ErrorCode;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::{
    catalogue::create_product,
    helpers::{assert_problem, Mode, TestShop},
};

/// Every operation of the document the entry point serves: (method, path, operation).
async fn operations(shop: &TestShop) -> Vec<(String, String, Value, Value)> {
    let mut all = Vec::new();
    let doc: Value = shop.get("/api/openapi.json", None).await.json().await.unwrap();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            all.push((method.clone(), path.clone(), operation.clone(), doc.clone()));
        }
    }
    all
}

fn statuses(operation: &Value) -> Vec<String> {
    operation["responses"].as_object().unwrap().keys().cloned().collect()
}

async fn every_error_is_a_problem_document_with_its_codes(shop: TestShop) {
    let operations = operations(&shop).await;
    assert!(operations.len() >= 20, "{} operations", operations.len());
    for (method, path, operation, doc) in &operations {
        let problem = &doc["components"]["schemas"]["Problem"];
        assert_eq!(problem["properties"]["code"]["$ref"], "#/components/schemas/ErrorCode", "{problem}");
        let codes: Vec<String> = doc["components"]["schemas"]["ErrorCode"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            codes,
            ErrorCode::ALL.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
            "every code, SALE_HALTED included"
        );
        let label = format!("{} {path}", method.to_uppercase());
        for (status, response) in operation["responses"].as_object().unwrap() {
            if status.starts_with('4') || status.starts_with('5') {
                let content = response["content"].as_object().unwrap_or_else(|| panic!("{label} {status}: {response}"));
                assert_eq!(content.keys().collect::<Vec<_>>(), ["application/problem+json"], "{label} {status}");
                assert_eq!(
                    content["application/problem+json"]["schema"]["$ref"], "#/components/schemas/Problem",
                    "{label} {status}"
                );
                let description = response["description"].as_str().unwrap_or_default();
                assert!(
                    ErrorCode::ALL.iter().any(|c| description.contains(c.as_str())),
                    "{label} {status} names no code: {description:?}"
                );
            }
        }
        let has = |status: &str| statuses(operation).iter().any(|s| s == status);
        let described =
            |status: &str| operation["responses"][status]["description"].as_str().unwrap_or_default().to_owned();
        for status in ["408", "413", "503"] {
            assert!(has(status), "{label} lacks {status}");
        }
        if operation["security"].as_array().is_some_and(|s| !s.is_empty()) {
            for code in ["UNAUTHENTICATED", "INVALID_TOKEN", "TOKEN_EXPIRED", "TOKEN_REVOKED"] {
                assert!(described("401").contains(code), "{label} 401 lacks {code}");
            }
        }
        if operation.get("requestBody").is_some() {
            assert!(
                described("400").contains("MALFORMED_JSON") && has("415") && described("422").contains("INVALID_BODY"),
                "{label}"
            );
        }
        let parameters = operation["parameters"].as_array().cloned().unwrap_or_default();
        if parameters.iter().any(|p| p["in"] == "path") {
            assert!(described("400").contains("INVALID_PATH_PARAMETER"), "{label}");
        }
        if parameters.iter().any(|p| p["name"] == "Idempotency-Key") {
            assert!(
                described("400").contains("IDEMPOTENCY_KEY_REQUIRED") && described("400").contains("INVALID_HEADER"),
                "{label}"
            );
        }
    }
    let find = |method: &str, path: &str| {
        operations
            .iter()
            .find(|(m, p, _, _)| m == method && p == path)
            .map(|(_, _, o, _)| o.clone())
            .unwrap_or_else(|| panic!("no {method} {path}"))
    };
    // The per-route cases.
    assert!(statuses(&find("post", "/api/auth/email-verifications/confirm")).contains(&"422".to_owned()));
    let purchase = find("post", "/api/sales/{id}/purchases");
    assert!(purchase["responses"]["422"]["description"].as_str().unwrap().contains("VALIDATION_FAILED"));
    assert!(purchase["responses"]["409"]["description"].as_str().unwrap().contains("SALE_HALTED"));
    if shop.mode == Mode::Embedded {
        for method in ["get", "delete"] {
            assert!(
                statuses(&find(method, "/api/flashsales/{name}")).contains(&"403".to_owned()),
                "{method} /api/flashsales/{{name}}"
            );
        }
    }
    // Limits.
    let size = |operation: &Value| {
        operation["parameters"].as_array().unwrap().iter().find(|p| p["name"] == "size").unwrap()["schema"].clone()
    };
    for path in ["/api/products", "/api/orders"] {
        let schema = size(&find("get", path));
        assert_eq!(
            (schema["minimum"].as_i64(), schema["maximum"].as_i64()),
            (Some(1), Some(100)),
            "{path} size: {schema}"
        );
    }
    let ids: Vec<&str> = operations.iter().filter_map(|(_, _, o, _)| o["operationId"].as_str()).collect();
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "operation ids are unique: {ids:?}");
}

/// chrono reads years such as `+262142`, which the API would then write back, and no
/// `date-time` reader accepts: such instants are field errors on every route that
/// takes one.
async fn instants_beyond_four_digit_years_are_refused(shop: TestShop) {
    let merchant = shop.merchant().await;
    let product = create_product(&shop, &merchant, "Lightstick", 10).await["id"].as_i64().unwrap();
    let beyond = ["+10000-01-01T00:00:00Z", "+262142-12-31T23:59:59Z", "-0001-01-01T00:00:00Z"];
    for at in beyond {
        let body = json!({ "name": "Hoodie", "price": "1.00", "quantity": 1, "opens_at": at });
        let problem = assert_problem(
            shop.post("/api/products", Some(&merchant), body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "VALIDATION_FAILED",
        )
        .await;
        assert_eq!(problem["errors"][0]["field"], "opens_at", "{problem}");
        let patch = shop
            .call(Method::PATCH, &format!("/api/products/{product}"), Some(&merchant), Some(json!({ "opens_at": at })))
            .await;
        assert_problem(patch, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
        let sale = json!({ "product_id": product, "stock": 1, "price": "1.00", "per_user_limit": 1,
            "opens_at": "2026-01-01T00:00:00Z", "closes_at": at });
        let problem = assert_problem(
            shop.post("/api/sales", Some(&merchant), sale).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "VALIDATION_FAILED",
        )
        .await;
        assert!(problem["errors"].as_array().unwrap().iter().any(|e| e["field"] == "closes_at"), "{problem}");
        if shop.mode == Mode::Embedded {
            let manifest = json!({
                "apiVersion": "goodsmall.io/v1alpha1", "kind": "FlashSale", "metadata": { "name": "far-future" },
                "spec": {
                    "productId": product, "stock": 1, "price": "1.00",
                    "opensAt": "2026-01-01T00:00:00Z", "closesAt": at, "perUserLimit": 1,
                },
            });
            let put = shop.call(Method::PUT, "/api/flashsales/far-future", Some(&merchant), Some(manifest)).await;
            let problem = assert_problem(put, StatusCode::UNPROCESSABLE_ENTITY, "INVALID_FLASH_SALE").await;
            assert!(problem["errors"].as_array().unwrap().iter().any(|e| e["field"] == "spec.closesAt"), "{problem}");
        }
    }
    // The range's ends are fine.
    let body = json!({ "name": "Hoodie", "price": "1.00", "quantity": 1, "opens_at": "9999-12-31T23:59:59Z" });
    let created =
        crate::helpers::assert_status(shop.post("/api/products", Some(&merchant), body).await, StatusCode::CREATED)
            .await;
    assert_eq!(created["opens_at"], "9999-12-31T23:59:59Z");
}

crate::in_both_modes!(every_error_is_a_problem_document_with_its_codes, instants_beyond_four_digit_years_are_refused);
