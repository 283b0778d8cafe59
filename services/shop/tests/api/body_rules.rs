//! One rule for request bodies on every route of every service: not JSON is 400
//! `MALFORMED_JSON`; JSON that is not an object of the expected fields (an array
//! included) is 422 `INVALID_BODY`; and a body over the limit is 413
//! `PAYLOAD_TOO_LARGE`, on routes that take no body as well, before anything runs.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{
    catalogue::create_product,
    helpers::{assert_problem, assert_status, TestShop},
};

/// Every route that takes a JSON body, with the token it needs (`None`: anonymous).
async fn body_routes(shop: &TestShop) -> Vec<(Method, String, Option<String>)> {
    let (merchant, shopper) = (shop.merchant().await, shop.shopper().await);
    let (product, sale) = shop.drop_of(&merchant, 5, 1, 0).await;
    let mut routes: Vec<(Method, String, Option<String>)> = [
        "/api/auth/email-verifications",
        "/api/auth/email-verifications/confirm",
        "/api/auth/login",
        "/api/auth/refresh",
        "/api/users",
    ]
    .into_iter()
    .map(|p| (Method::POST, p.to_owned(), None))
    .collect();
    let with = |method: Method, path: String, token: &str| (method, path, Some(token.to_owned()));
    routes.extend([
        with(Method::PATCH, "/api/users/me".into(), &shopper),
        with(Method::PUT, "/api/users/me/password".into(), &shopper),
        with(Method::POST, "/api/products".into(), &merchant),
        with(Method::PATCH, format!("/api/products/{product}"), &merchant),
        with(Method::POST, "/api/cart/items".into(), &shopper),
        with(Method::PUT, format!("/api/cart/items/{product}"), &shopper),
        with(Method::POST, "/api/sales".into(), &merchant),
        with(Method::POST, format!("/api/sales/{sale}/purchases"), &shopper),
    ]);
    if shop.mode == crate::helpers::Mode::Embedded {
        routes.push(with(Method::PUT, "/api/flashsales/rules".into(), &merchant));
    }
    routes
}

async fn send_raw(
    shop: &TestShop,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: &'static str,
) -> reqwest::Response {
    let mut request = shop
        .client
        .request(method, shop.url(path))
        .header("content-type", "application/json")
        .header("idempotency-key", "rules")
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("request sent")
}

async fn every_route_answers_bad_bodies_alike(shop: TestShop) {
    for (method, path, token) in body_routes(&shop).await {
        for malformed in ["{,}", "", r#"{"email": "a@b.example""#, r#"{"quantity": 1} trailing"#, "nul"] {
            let answer = send_raw(&shop, method.clone(), &path, token.as_deref(), malformed).await;
            assert_problem(answer, StatusCode::BAD_REQUEST, "MALFORMED_JSON").await;
        }
        for wrong_shape in ["[90,2]", "[]", "null", "42", r#""text""#] {
            let answer = send_raw(&shop, method.clone(), &path, token.as_deref(), wrong_shape).await;
            let problem = assert_problem(answer, StatusCode::UNPROCESSABLE_ENTITY, "INVALID_BODY").await;
            assert!(problem["detail"].as_str().unwrap().contains("object"), "{method} {path} {wrong_shape}: {problem}");
        }
    }
}

/// The issue's case: a two-element array read as `{"product_id", "quantity"}`.
async fn an_array_does_not_add_a_cart_line(shop: TestShop) {
    let merchant = shop.merchant().await;
    let shopper = shop.shopper().await;
    let product = create_product(&shop, &merchant, "Lightstick", 10).await["id"].as_i64().unwrap();
    let array = shop
        .client
        .post(shop.url("/api/cart/items"))
        .bearer_auth(&shopper)
        .json(&json!([product, 2]))
        .send()
        .await
        .unwrap();
    assert_problem(array, StatusCode::UNPROCESSABLE_ENTITY, "INVALID_BODY").await;
    let cart = assert_status(shop.get("/api/cart", Some(&shopper)).await, StatusCode::OK).await;
    assert_eq!(cart["items"].as_array().map(Vec::len), Some(0), "{cart}");
}

/// Sends `method path` declaring a `length`-byte body (and sending none of it, so the
/// answer cannot be lost to a reset), then reads the answer: status and JSON body.
async fn declared_body(shop: &TestShop, method: &str, path: &str, token: &str, length: usize) -> (u16, String, Value) {
    let url = reqwest::Url::parse(&shop.url(path)).unwrap();
    let host = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap());
    let mut stream = tokio::net::TcpStream::connect(&host).await.unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\nIdempotency-Key: big-{length}\r\n\
         Content-Type: application/json\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    // The server may close before reading a body it refused; what it sent is enough.
    while let Ok(n) = stream.read(&mut buf).await {
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("{method} {path}: no answer: {text:?}"));
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let content_type = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-type:").map(|v| v.trim().to_owned()))
        .unwrap_or_default();
    (status, content_type, serde_json::from_str(body).unwrap_or(Value::Null))
}

async fn a_huge_body_is_refused_on_routes_that_take_none(shop: TestShop) {
    let merchant = shop.merchant().await;
    let shopper = shop.shopper().await;
    let (product, sale) = shop.drop_of(&merchant, 5, 1, 0).await;
    assert_status(
        shop.post("/api/cart/items", Some(&shopper), json!({ "product_id": product, "quantity": 1 })).await,
        StatusCode::OK,
    )
    .await;
    let order = shop.bought(&shopper, sale, 1).await;
    let two_mb = 2 * 1024 * 1024;
    let routes = [
        ("POST", "/api/cart/checkout".to_owned(), &shopper),
        ("DELETE", format!("/api/cart/items/{product}"), &shopper),
        ("POST", format!("/api/orders/{order}/cancel"), &shopper),
        ("POST", format!("/api/payments/{order}"), &shopper),
        ("POST", format!("/api/sales/{sale}/close"), &merchant),
        ("GET", "/api/products".to_owned(), &shopper),
        ("POST", "/api/auth/logout".to_owned(), &shopper),
    ];
    for (method, path, token) in routes {
        let (status, content_type, problem) = declared_body(&shop, method, &path, token, two_mb).await;
        assert_eq!((status, content_type.as_str()), (413, "application/problem+json"), "{method} {path}: {problem}");
        assert_eq!(problem["code"], "PAYLOAD_TOO_LARGE", "{method} {path}");
    }
    // None of them ran: the cart keeps its line, the order is unpaid and open, the sale
    // open, and the session was not logged out.
    let cart = assert_status(shop.get("/api/cart", Some(&shopper)).await, StatusCode::OK).await;
    assert_eq!(cart["items"].as_array().map(Vec::len), Some(1), "{cart}");
    let placed = assert_status(shop.get(&format!("/api/orders/{order}"), Some(&shopper)).await, StatusCode::OK).await;
    assert_eq!(placed["status"], "PROCESSING", "{placed}");
    let open = assert_status(shop.get(&format!("/api/sales/{sale}"), None).await, StatusCode::OK).await;
    assert!(open["closed_at"].is_null(), "{open}");
}

crate::in_both_modes!(
    every_route_answers_bad_bodies_alike,
    an_array_does_not_add_a_cart_line,
    a_huge_body_is_refused_on_routes_that_take_none
);
