//! Bad input of every kind gets a 4xx `application/problem+json` with a stable code,
//! from every service, never a 500.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::{
    catalogue::create_product,
    helpers::{assert_problem, TestShop},
};

/// Sends a raw body with the given content type.
async fn raw(shop: &TestShop, method: Method, path: &str, token: Option<&str>, content_type: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
    let mut request = shop.client.request(method, shop.url(path)).header("content-type", content_type).body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("request sent")
}

async fn malformed_and_mistyped_bodies(shop: TestShop) {
    let merchant = shop.merchant().await;
    let shopper = shop.shopper().await;
    let json_posts: [(&str, Option<&str>); 5] = [
        ("/api/auth/email-verifications", None),
        ("/api/auth/login", None),
        ("/api/users", None),
        ("/api/products", Some(merchant.as_str())),
        ("/api/cart/items", Some(shopper.as_str())),
    ];
    for (path, token) in json_posts {
        let malformed = raw(&shop, Method::POST, path, token, "application/json", "{,}").await;
        assert_problem(malformed, StatusCode::BAD_REQUEST, "MALFORMED_JSON").await;
        let wrong_types = raw(&shop, Method::POST, path, token, "application/json", r#"{"email": 5, "name": [], "product_id": "x"}"#).await;
        assert_problem(wrong_types, StatusCode::UNPROCESSABLE_ENTITY, "INVALID_BODY").await;
        let not_json = raw(&shop, Method::POST, path, token, "text/plain", "hello").await;
        assert_problem(not_json, StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE").await;
        let array = raw(&shop, Method::POST, path, token, "application/json", "[]").await;
        assert_problem(array, StatusCode::UNPROCESSABLE_ENTITY, "INVALID_BODY").await;
    }
    let unknown_field = shop.post("/api/cart/items", Some(&shopper), json!({ "product_id": 1, "quantity": 1, "price": "0.01" })).await;
    assert_problem(unknown_field, StatusCode::UNPROCESSABLE_ENTITY, "INVALID_BODY").await;
}

async fn huge_bodies_are_refused(shop: TestShop) {
    let merchant = shop.merchant().await;
    let huge = format!("{{\"name\": \"{}\"}}", "x".repeat(200 * 1024));
    for (path, token) in [("/api/users", None), ("/api/products", Some(merchant.as_str()))] {
        let response = raw(&shop, Method::POST, path, token, "application/json", huge.clone()).await;
        assert_problem(response, StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE").await;
    }
}

async fn unknown_routes_methods_and_ids(shop: TestShop) {
    let shopper = shop.shopper().await;
    for base in shop.bases() {
        let missing = shop.client.get(format!("{base}/api/nope")).send().await.unwrap();
        assert_problem(missing, StatusCode::NOT_FOUND, "NOT_FOUND").await;
        let wrong_method = shop.client.delete(format!("{base}/healthz")).send().await.unwrap();
        assert_problem(wrong_method, StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED").await;
    }
    let wrong_method = shop.call(Method::DELETE, "/api/auth/login", None, None).await;
    assert_problem(wrong_method, StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED").await;
    for path in ["/api/products/abc", "/api/products/1.5/stock", "/api/products/99999999999999999999999"] {
        assert_problem(shop.get(path, None).await, StatusCode::BAD_REQUEST, "INVALID_PATH_PARAMETER").await;
    }
    let put = shop.call(Method::PUT, "/api/cart/items/abc", Some(&shopper), Some(json!({ "quantity": 1 }))).await;
    assert_problem(put, StatusCode::BAD_REQUEST, "INVALID_PATH_PARAMETER").await;
    assert_problem(shop.get("/api/products/-5", None).await, StatusCode::NOT_FOUND, "PRODUCT_NOT_FOUND").await;
    assert_problem(shop.get("/api/products?size=abc", None).await, StatusCode::BAD_REQUEST, "INVALID_QUERY").await;
    assert_problem(shop.get("/api/products?size=-1", None).await, StatusCode::BAD_REQUEST, "INVALID_QUERY").await;
    assert_problem(shop.get(&format!("/api/products?q={}", "z".repeat(101)), None).await, StatusCode::BAD_REQUEST, "INVALID_QUERY").await;
    let patch = shop.call(Method::PATCH, "/api/products/987654321", Some(&shop.merchant().await), Some(json!({ "name": "x" }))).await;
    assert_problem(patch, StatusCode::NOT_FOUND, "PRODUCT_NOT_FOUND").await;
}

async fn a_merchant_cannot_change_another_merchants_product(shop: TestShop) {
    let owner = shop.merchant().await;
    let rival = shop.merchant().await;
    let product = create_product(&shop, &owner, "Hoodie", 5).await;
    let path = format!("/api/products/{}", product["id"]);
    let patch = shop.call(Method::PATCH, &path, Some(&rival), Some(json!({ "price": "0.01" }))).await;
    assert_problem(patch, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    let bad = shop.call(Method::PATCH, &path, Some(&owner), Some(json!({ "price": "1.234", "quantity": -1 }))).await;
    let problem = assert_problem(bad, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    assert_eq!(problem["errors"].as_array().unwrap().len(), 2, "{problem}");
}

crate::in_both_modes!(
    malformed_and_mistyped_bodies,
    huge_bodies_are_refused,
    unknown_routes_methods_and_ids,
    a_merchant_cannot_change_another_merchants_product,
);
