//! Bad input of every kind gets a 4xx `application/problem+json` with a stable code,
//! from every service, never a 500.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::{
    catalogue::create_product,
    helpers::{assert_problem, TestShop},
};

/// Sends a raw body with the given content type.
async fn raw(
    shop: &TestShop,
    method: Method,
    path: &str,
    token: Option<&str>,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
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
        let wrong_types =
            raw(&shop, Method::POST, path, token, "application/json", r#"{"email": 5, "name": [], "product_id": "x"}"#)
                .await;
        assert_problem(wrong_types, StatusCode::UNPROCESSABLE_ENTITY, "INVALID_BODY").await;
        let not_json = raw(&shop, Method::POST, path, token, "text/plain", "hello").await;
        assert_problem(not_json, StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE").await;
        let array = raw(&shop, Method::POST, path, token, "application/json", "[]").await;
        assert_problem(array, StatusCode::UNPROCESSABLE_ENTITY, "INVALID_BODY").await;
    }
    let unknown_field =
        shop.post("/api/cart/items", Some(&shopper), json!({ "product_id": 1, "quantity": 1, "price": "0.01" })).await;
    assert_problem(unknown_field, StatusCode::UNPROCESSABLE_ENTITY, "INVALID_BODY").await;
}

async fn huge_bodies_are_refused(shop: TestShop) {
    let merchant = shop.merchant().await;
    let huge = format!("{{\"name\": \"{}\"}}", "x".repeat(200 * 1024));
    for (path, token) in [("/api/users", None), ("/api/products", Some(merchant.as_str()))] {
        // The server reads and drops the body before answering 413, so the client is
        // never cut off while still sending.
        let mut request =
            shop.client.post(shop.url(path)).header("content-type", "application/json").body(huge.clone());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("an answer to a huge body");
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
    assert_problem(
        shop.get(&format!("/api/products?q={}", "z".repeat(101)), None).await,
        StatusCode::BAD_REQUEST,
        "INVALID_QUERY",
    )
    .await;
    let patch = shop
        .call(Method::PATCH, "/api/products/987654321", Some(&shop.merchant().await), Some(json!({ "name": "x" })))
        .await;
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

/// A purchase request with the given Idempotency-Key (if any) and raw JSON body.
/// Retries a transport error (a 413 may close the connection mid-upload).
async fn purchase_raw(
    shop: &TestShop,
    sale: &str,
    token: &str,
    key: Option<&str>,
    body: impl Into<String>,
) -> reqwest::Response {
    let body = body.into();
    for _ in 0..5 {
        let mut request = shop
            .client
            .post(shop.url(&format!("/api/sales/{sale}/purchases")))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body.clone());
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        if let Ok(response) = request.send().await {
            return response;
        }
    }
    panic!("no answer from the purchase endpoint")
}

async fn drop_endpoints_refuse_bad_input(shop: TestShop) {
    let merchant = shop.merchant().await;
    let me = shop.shopper().await;
    let (_, sale) = shop.drop_of(&merchant, 5, 2, 0).await;
    let sale = sale.to_string();
    let ok = r#"{"quantity":1}"#;
    assert_problem(
        purchase_raw(&shop, &sale, &me, None, ok).await,
        StatusCode::BAD_REQUEST,
        "IDEMPOTENCY_KEY_REQUIRED",
    )
    .await;
    for bad_key in ["has space", &"k".repeat(101), ""] {
        assert_problem(
            purchase_raw(&shop, &sale, &me, Some(bad_key), ok).await,
            StatusCode::BAD_REQUEST,
            "INVALID_HEADER",
        )
        .await;
    }
    assert_problem(purchase_raw(&shop, &sale, &me, Some("k"), "{,}").await, StatusCode::BAD_REQUEST, "MALFORMED_JSON")
        .await;
    assert_problem(
        purchase_raw(&shop, &sale, &me, Some("k"), r#"{"quantity":"two"}"#).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "INVALID_BODY",
    )
    .await;
    assert_problem(
        purchase_raw(&shop, &sale, &me, Some("k"), r#"{"quantity":1,"price":"0.01"}"#).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "INVALID_BODY",
    )
    .await;
    for quantity in ["0", "11", "-3"] {
        let body = format!(r#"{{"quantity":{quantity}}}"#);
        assert_problem(
            purchase_raw(&shop, &sale, &me, Some("k"), body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "VALIDATION_FAILED",
        )
        .await;
    }
    let huge = format!(r#"{{"quantity":1,"pad":"{}"}}"#, "x".repeat(200 * 1024));
    assert_problem(
        purchase_raw(&shop, &sale, &me, Some("k"), huge).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "PAYLOAD_TOO_LARGE",
    )
    .await;
    assert_problem(
        purchase_raw(&shop, "abc", &me, Some("k"), ok).await,
        StatusCode::BAD_REQUEST,
        "INVALID_PATH_PARAMETER",
    )
    .await;
    let no_token = shop
        .client
        .post(shop.url(&format!("/api/sales/{sale}/purchases")))
        .header("Idempotency-Key", "k")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_problem(no_token, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED").await;
    let counters =
        crate::helpers::assert_status(shop.get(&format!("/api/sales/{sale}"), None).await, StatusCode::OK).await;
    assert_eq!(counters["remaining"], 5, "no bad request took stock");

    let new_sale = json!({ "product_id": 1, "stock": 0, "price": "-1", "per_user_limit": 1,
        "opens_at": "2030-01-02T00:00:00Z", "closes_at": "2030-01-01T00:00:00Z" });
    assert_problem(shop.post("/api/sales", Some(&me), new_sale.clone()).await, StatusCode::FORBIDDEN, "FORBIDDEN")
        .await;
    let problem = assert_problem(
        shop.post("/api/sales", Some(&merchant), new_sale).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "VALIDATION_FAILED",
    )
    .await;
    assert_eq!(problem["errors"].as_array().unwrap().len(), 3, "stock, price and closes_at: {problem}");
    let mistyped = json!({ "product_id": "one", "stock": 1, "price": "1.00", "per_user_limit": 1, "opens_at": "soon",
        "closes_at": "later" });
    assert_problem(
        shop.post("/api/sales", Some(&merchant), mistyped).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "INVALID_BODY",
    )
    .await;
    let rival = shop.merchant().await;
    assert_problem(
        shop.post(&format!("/api/sales/{sale}/close"), Some(&rival), json!({})).await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;
    assert_problem(
        shop.post("/api/sales/424242/close", Some(&merchant), json!({})).await,
        StatusCode::NOT_FOUND,
        "SALE_NOT_FOUND",
    )
    .await;
    assert_problem(shop.get("/api/sales/424242", None).await, StatusCode::NOT_FOUND, "SALE_NOT_FOUND").await;

    for id in ["not-an-order", "00000000-0000-7000-8000-000000000000", &"9".repeat(300)] {
        assert_problem(
            shop.get(&format!("/api/orders/{id}"), Some(&me)).await,
            StatusCode::NOT_FOUND,
            "ORDER_NOT_FOUND",
        )
        .await;
        assert_problem(shop.cancel(&me, id).await, StatusCode::NOT_FOUND, "ORDER_NOT_FOUND").await;
        let pay = shop
            .client
            .post(shop.url(&format!("/api/payments/{id}")))
            .bearer_auth(&me)
            .header("Idempotency-Key", "k")
            .send()
            .await
            .unwrap();
        assert_problem(pay, StatusCode::NOT_FOUND, "PAYMENT_NOT_FOUND").await;
    }
    assert_problem(shop.get("/api/orders?size=0", Some(&me)).await, StatusCode::BAD_REQUEST, "INVALID_QUERY").await;
    assert_problem(shop.get("/api/orders?cursor=garbage", Some(&me)).await, StatusCode::BAD_REQUEST, "INVALID_CURSOR")
        .await;
    // Paying asks for no key: the order is its key.
    let unkeyed_pay = shop.client.post(shop.url("/api/payments/x")).bearer_auth(&me).send().await.unwrap();
    assert_problem(unkeyed_pay, StatusCode::NOT_FOUND, "PAYMENT_NOT_FOUND").await;
    let unkeyed_checkout = shop.client.post(shop.url("/api/cart/checkout")).bearer_auth(&me).send().await.unwrap();
    assert_problem(unkeyed_checkout, StatusCode::BAD_REQUEST, "IDEMPOTENCY_KEY_REQUIRED").await;
}

crate::in_both_modes!(
    drop_endpoints_refuse_bad_input,
    malformed_and_mistyped_bodies,
    huge_bodies_are_refused,
    unknown_routes_methods_and_ids,
    a_merchant_cannot_change_another_merchants_product,
);
