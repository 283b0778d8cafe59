//! Products: merchant-only writes, keyset paging, the detail cache and live stock.

use std::collections::HashSet;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{assert_problem, assert_status, TestShop};

pub async fn create_product(shop: &TestShop, merchant: &str, name: &str, quantity: i64) -> Value {
    let body =
        json!({ "name": name, "description": "limited", "price": "120.00", "quantity": quantity, "status": "ON_SALE" });
    assert_status(shop.post("/api/products", Some(merchant), body).await, StatusCode::CREATED).await
}

async fn only_merchants_manage_products(shop: TestShop) {
    let merchant = shop.merchant().await;
    let shopper = shop.shopper().await;
    let body = json!({ "name": "Hoodie", "description": "d", "price": "120.00", "quantity": 5 });
    assert_problem(shop.post("/api/products", None, body.clone()).await, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED")
        .await;
    assert_problem(shop.post("/api/products", Some(&shopper), body.clone()).await, StatusCode::FORBIDDEN, "FORBIDDEN")
        .await;
    let product = assert_status(shop.post("/api/products", Some(&merchant), body).await, StatusCode::CREATED).await;
    assert_eq!(product["price"], "120.00");
    assert_eq!(product["status"], "PRE_SALE");
    let path = format!("/api/products/{}", product["id"]);
    let patch = shop.call(Method::PATCH, &path, Some(&shopper), Some(json!({ "name": "Mine now" }))).await;
    assert_problem(patch, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    let bad = json!({ "name": "", "price": "-1", "quantity": -3, "status": "GONE" });
    let problem = assert_problem(
        shop.post("/api/products", Some(&merchant), bad).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "INVALID_BODY",
    )
    .await;
    assert!(problem["detail"].as_str().unwrap().contains("status"), "{problem}");
    let bad = json!({ "name": "", "description": "d", "price": "-1", "quantity": -3 });
    let problem = assert_problem(
        shop.post("/api/products", Some(&merchant), bad).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "VALIDATION_FAILED",
    )
    .await;
    let fields: HashSet<&str> =
        problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, HashSet::from(["name", "price", "quantity"]));
}

async fn paging_returns_every_product_exactly_once(shop: TestShop) {
    let merchant = shop.merchant().await;
    let mut created = HashSet::new();
    for i in 0..1000 {
        let name = if i % 10 == 0 { format!("Lightstick {i}") } else { format!("Photocard {i}") };
        created.insert(create_product(&shop, &merchant, &name, 10).await["id"].as_i64().unwrap());
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/products?size=37&cursor={c}"),
            None => "/api/products?size=37".to_owned(),
        };
        let page = assert_status(shop.get(&path, None).await, StatusCode::OK).await;
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 37);
        seen.extend(items.iter().map(|p| p["id"].as_i64().unwrap()));
        if seen.len() == 37 {
            // A product added while paging does not shift the pages.
            create_product(&shop, &merchant, "Late arrival", 1).await;
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 1000, "no duplicates or gaps");
    assert_eq!(seen.iter().copied().collect::<HashSet<_>>(), created);
    assert!(seen.windows(2).all(|w| w[0] > w[1]), "stable newest-first order");

    let page = assert_status(shop.get("/api/products?q=LIGHTSTICK&size=100", None).await, StatusCode::OK).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 100);
    assert!(page["items"].as_array().unwrap().iter().all(|p| p["name"].as_str().unwrap().starts_with("Lightstick")));
    assert!(page["next_cursor"].is_null());
    assert_problem(shop.get("/api/products?size=0", None).await, StatusCode::BAD_REQUEST, "INVALID_QUERY").await;
    assert_problem(shop.get("/api/products?size=101", None).await, StatusCode::BAD_REQUEST, "INVALID_QUERY").await;
    assert_problem(shop.get("/api/products?cursor=bogus", None).await, StatusCode::BAD_REQUEST, "INVALID_CURSOR").await;
}

async fn cache_hits_skip_the_database_and_updates_show_at_once(shop: TestShop) {
    let merchant = shop.merchant().await;
    let product = create_product(&shop, &merchant, "Hoodie", 3).await;
    let path = format!("/api/products/{}", product["id"]);
    let series = r#"goodsmall_db_queries_total{db="product",query="product.find_by_id"}"#;
    let queries =
        || async { shop.metric("/api/products", series).await.unwrap_or_else(|| panic!("/metrics lacks {series}")) };
    let first = assert_status(shop.get(&path, None).await, StatusCode::OK).await;
    // Creating read the new row back, so the series counts at least that query.
    let before_hits = queries().await;
    assert!(before_hits > 0.0, "{series} counted no query: {before_hits}");
    for _ in 0..20 {
        assert_eq!(assert_status(shop.get(&path, None).await, StatusCode::OK).await, first);
    }
    assert_eq!(queries().await, before_hits, "cache hits must not query the database");
    // And the series does count detail reads: a miss shows in it at once.
    assert_problem(shop.get("/api/products/987654321", None).await, StatusCode::NOT_FOUND, "PRODUCT_NOT_FOUND").await;
    assert_eq!(queries().await, before_hits + 1.0, "a miss queries the database once");
    let patch =
        shop.call(Method::PATCH, &path, Some(&merchant), Some(json!({ "name": "Hoodie v2", "price": "99.50" }))).await;
    assert_status(patch, StatusCode::OK).await;
    let fresh = assert_status(shop.get(&path, None).await, StatusCode::OK).await;
    assert_eq!(fresh["name"], "Hoodie v2");
    assert_eq!(fresh["price"], "99.50");
    assert_problem(shop.get("/api/products/987654321", None).await, StatusCode::NOT_FOUND, "PRODUCT_NOT_FOUND").await;
}

async fn live_stock_follows_the_product(shop: TestShop) {
    let merchant = shop.merchant().await;
    let product = create_product(&shop, &merchant, "Photocard set", 42).await;
    let stock_path = format!("/api/products/{}/stock", product["id"]);
    let stock = assert_status(shop.get(&stock_path, None).await, StatusCode::OK).await;
    assert_eq!(stock["available"], 42);
    let path = format!("/api/products/{}", product["id"]);
    assert_status(
        shop.call(Method::PATCH, &path, Some(&merchant), Some(json!({ "quantity": 7 }))).await,
        StatusCode::OK,
    )
    .await;
    let stock = assert_status(shop.get(&stock_path, None).await, StatusCode::OK).await;
    assert_eq!(stock["available"], 7);
    assert_problem(shop.get("/api/products/987654321/stock", None).await, StatusCode::NOT_FOUND, "PRODUCT_NOT_FOUND")
        .await;
}

crate::in_both_modes!(
    only_merchants_manage_products,
    paging_returns_every_product_exactly_once,
    cache_hits_skip_the_database_and_updates_show_at_once,
    live_stock_follows_the_product,
);
