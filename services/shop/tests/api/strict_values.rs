//! Values read exactly as written: a price is a plain decimal string with at most two
//! decimals wherever one is parsed (products, sales, FlashSale manifests), and an
//! access token is refused from the first second past its `exp`, by every service.

use std::time::Duration;

use goodsmall_platform::auth::{Claims, Role};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::{
    catalogue::create_product,
    helpers::{assert_problem, assert_status, Mode, TestShop},
};

const NOT_PRICES: [&str; 6] = ["1e3", " 1.00", "1.00 ", "+1.00", "1.", "１.00"];

/// Asserts a 422 whose field errors name `field`.
async fn refused_field(response: reqwest::Response, code: &str, field: &str) {
    let problem = assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY, code).await;
    let fields: Vec<&str> =
        problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert!(fields.iter().any(|f| f.ends_with(field)), "{field} not named: {problem}");
}

async fn a_price_is_a_plain_decimal_everywhere(shop: TestShop) {
    let merchant = shop.merchant().await;
    let product = create_product(&shop, &merchant, "Keyring", 10).await["id"].as_i64().unwrap();
    let opens_at = chrono::Utc::now();
    let mut bad_prices: Vec<Value> = NOT_PRICES.iter().map(|p| json!(p)).collect();
    bad_prices.push(json!(12.5));
    for price in bad_prices {
        let new_product = json!({ "name": "Keyring", "price": price, "quantity": 5 });
        refused_field(shop.post("/api/products", Some(&merchant), new_product).await, "VALIDATION_FAILED", "price")
            .await;
        let change = shop
            .call(Method::PATCH, &format!("/api/products/{product}"), Some(&merchant), Some(json!({ "price": price })))
            .await;
        refused_field(change, "VALIDATION_FAILED", "price").await;
        let sale = json!({ "product_id": product, "stock": 5, "price": price, "per_user_limit": 1,
            "opens_at": opens_at.to_rfc3339(), "closes_at": (opens_at + chrono::Duration::hours(1)).to_rfc3339() });
        refused_field(shop.post("/api/sales", Some(&merchant), sale).await, "VALIDATION_FAILED", "price").await;
        // The FlashSale API (one process; a cluster's CRD schema has the same pattern).
        if let (Mode::Embedded, Some(text)) = (shop.mode, price.as_str()) {
            let manifest = json!({ "apiVersion": "goodsmall.io/v1alpha1", "kind": "FlashSale",
                "metadata": { "name": "prices" },
                "spec": { "productId": product, "stock": 5, "price": text, "perUserLimit": 1,
                          "opensAt": opens_at.to_rfc3339(),
                          "closesAt": (opens_at + chrono::Duration::hours(1)).to_rfc3339() } });
            refused_field(
                shop.call(Method::PUT, "/api/flashsales/prices", Some(&merchant), Some(manifest)).await,
                "INVALID_FLASH_SALE",
                "price",
            )
            .await;
        }
    }
    let unchanged = assert_status(shop.get(&format!("/api/products/{product}"), None).await, StatusCode::OK).await;
    assert_eq!(unchanged["price"], "120.00", "{unchanged}");
    let fine = shop
        .call(Method::PATCH, &format!("/api/products/{product}"), Some(&merchant), Some(json!({ "price": "99.5" })))
        .await;
    assert_eq!(assert_status(fine, StatusCode::OK).await["price"], "99.50");
}

/// A token `offset_secs` from its expiry (negative: already expired), signed with the
/// shop's key.
fn token_expiring_in(shop: &TestShop, offset_secs: i64) -> String {
    let now = jsonwebtoken::get_current_timestamp() as i64;
    let claims = Claims {
        sub: "424242".into(),
        sid: uuid::Uuid::new_v4().simple().to_string(),
        role: Role::Shopper,
        iss: "goodsmall".into(),
        aud: "goodsmall-api".into(),
        iat: (now - 900) as u64,
        exp: (now + offset_secs) as u64,
    };
    let key = EncodingKey::from_ed_pem(shop.keys.private_pem.as_bytes()).unwrap();
    jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, &key).unwrap()
}

async fn a_token_just_past_its_expiry_is_refused_by_every_service(shop: TestShop) {
    let fresh = token_expiring_in(&shop, 600);
    assert_status(shop.get("/api/cart", Some(&fresh)).await, StatusCode::OK).await;
    for past in 1..=5 {
        let expired = token_expiring_in(&shop, -past);
        for path in ["/api/users/me", "/api/cart", "/api/orders", "/api/payments/00000000-0000-7000-8000-000000000000"]
        {
            assert_problem(shop.get(path, Some(&expired)).await, StatusCode::UNAUTHORIZED, "TOKEN_EXPIRED").await;
        }
    }
    // One that expires while in use: accepted until its `exp`, refused right after.
    let short = token_expiring_in(&shop, 1);
    assert_status(shop.get("/api/cart", Some(&short)).await, StatusCode::OK).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(4);
    loop {
        let response = shop.get("/api/cart", Some(&short)).await;
        if response.status() == StatusCode::UNAUTHORIZED {
            assert_problem(response, StatusCode::UNAUTHORIZED, "TOKEN_EXPIRED").await;
            break;
        }
        assert!(std::time::Instant::now() < deadline, "a token 2 s past its exp was still accepted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

crate::in_both_modes!(a_price_is_a_plain_decimal_everywhere, a_token_just_past_its_expiry_is_refused_by_every_service);
