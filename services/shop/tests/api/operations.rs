//! What operators rely on: health, readiness, metrics and an OpenAPI document that
//! matches the routes actually served.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{assert_status, Mode, TestShop};

async fn health_readiness_and_metrics(shop: TestShop) {
    for base in shop.bases() {
        let health = shop.client.get(format!("{base}/healthz")).send().await.unwrap();
        assert_eq!(health.status(), StatusCode::OK);
        let ready = shop.client.get(format!("{base}/readyz")).send().await.unwrap();
        let ready = assert_status(ready, StatusCode::OK).await;
        let checks = ready["checks"].as_object().unwrap_or_else(|| panic!("readiness lists its checks: {ready}"));
        assert!(checks.keys().any(|k| k.contains("database")), "{ready}");
        assert!(checks.keys().any(|k| k.contains("kv") || k.contains("redis") || k.contains("memory")), "{ready}");
    }
    shop.get("/api/products?size=1", None).await;
    shop.get("/api/products/abc", None).await;
    let text = shop
        .client
        .get(shop.url("/api/products").replace("/api/products", "/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for series in [
        r#"goodsmall_http_requests_total{method="GET",route="/api/products",status="200"}"#,
        r#"goodsmall_http_requests_total{method="GET",route="/api/products/{id}",status="400"}"#,
        "goodsmall_http_request_duration_seconds_bucket",
        r#"goodsmall_db_pool_connections{db="product""#,
        "goodsmall_kv_operations_total",
        "goodsmall_kv_connection_up 1",
    ] {
        assert!(text.contains(series), "/metrics lacks {series}:\n{text}");
    }
    assert!(!text.contains("route=\"/api/products/abc\""), "raw paths must not become labels");
}

/// The entry point serves the whole API: in the distributed deployment through the
/// chart's route table, every service answering with the same whole document. Every
/// operation it documents is routed and served (no route 404/405), and nothing
/// answers 500 to an empty request.
async fn openapi_matches_the_routes(shop: TestShop) {
    let doc = assert_status(shop.get("/api/openapi.json", None).await, StatusCode::OK).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    if shop.mode == Mode::Distributed {
        assert!(doc == goodsmall_shop::openapi::whole(), "the entry point serves the separate services' whole API");
        for base in shop.bases() {
            let served: Value =
                shop.client.get(format!("{base}/api/openapi.json")).send().await.unwrap().json().await.unwrap();
            assert!(served == doc, "{base} serves the whole API too, whichever service the route table picks");
        }
    }
    let paths = doc["paths"].as_object().unwrap();
    for expected in [
        "/api/users",
        "/api/auth/login",
        "/api/products",
        "/api/products/{id}",
        "/api/products/{id}/stock",
        "/api/cart",
        "/api/cart/items/{product_id}",
    ] {
        assert!(paths.contains_key(expected), "OpenAPI lacks {expected}");
    }
    assert_eq!(
        paths.contains_key("/api/dev/mailbox"),
        shop.mode == Mode::Embedded,
        "the dev mailbox exists only in the one-process default"
    );
    for (path, operations) in paths {
        let concrete = path.replace("{id}", "1").replace("{product_id}", "1");
        for method in operations.as_object().unwrap().keys() {
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let response = shop.client.request(method.clone(), shop.url(&concrete)).send().await.unwrap();
            let status = response.status();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            assert!(status.as_u16() < 500, "{method} {concrete}: {status} {body}");
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {concrete} is documented but not routed");
            assert_ne!(body["code"], "NOT_FOUND", "{method} {concrete} is documented but not routed");
        }
    }
}

crate::in_both_modes!(health_readiness_and_metrics, openapi_matches_the_routes);
