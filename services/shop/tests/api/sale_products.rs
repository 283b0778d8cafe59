//! A sale is only made for a product that exists and that its merchant sells, in both
//! ways of making one: `POST /api/sales` (in both deployments; the separate order
//! service asks the product service) and a FlashSale manifest (the one-process shop's
//! operator; the cluster's asks the product service's API the same way).

use std::time::Duration;

use goodsmall_platform::auth::{KeySettings, Role, TokenSigner};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::{
    catalogue::create_product,
    helpers::{assert_problem, assert_status, TestShop},
};

fn new_sale(product_id: i64) -> Value {
    let opens_at = chrono::Utc::now();
    json!({ "product_id": product_id, "stock": 5, "price": "49.00", "per_user_limit": 1,
        "opens_at": opens_at.to_rfc3339(), "closes_at": (opens_at + chrono::Duration::hours(1)).to_rfc3339() })
}

/// An access token of `role` for user `user_id`, signed with the shop's key.
pub fn minted(shop: &TestShop, role: Role, user_id: i64) -> String {
    let signer =
        TokenSigner::new(&shop.keys.private_pem, KeySettings::default().issuer(), Duration::from_secs(900)).unwrap();
    signer.issue(user_id, role, &format!("test-{}-{user_id}", role.as_str())).unwrap()
}

async fn a_sale_of_a_product_that_does_not_exist_is_refused(shop: TestShop) {
    let merchant = shop.merchant().await;
    let refused = assert_problem(
        shop.post("/api/sales", Some(&merchant), new_sale(987_654_321)).await,
        StatusCode::NOT_FOUND,
        "PRODUCT_NOT_FOUND",
    )
    .await;
    assert!(refused["detail"].as_str().unwrap().contains("987654321"), "{refused}");
    let listed = assert_status(shop.get("/api/sales", None).await, StatusCode::OK).await;
    assert!(listed.as_array().unwrap().iter().all(|s| s["product_id"] != 987_654_321), "nothing was listed: {listed}");
}

async fn a_merchant_sells_only_their_own_products(shop: TestShop) {
    let (owner, rival) = (shop.merchant().await, shop.merchant().await);
    let product = create_product(&shop, &owner, "Tour Hoodie", 10).await;
    let id = product["id"].as_i64().unwrap();
    let refused =
        assert_problem(shop.post("/api/sales", Some(&rival), new_sale(id)).await, StatusCode::FORBIDDEN, "FORBIDDEN")
            .await;
    assert!(refused["detail"].as_str().unwrap().contains("another merchant"), "{refused}");
    let sale = assert_status(shop.post("/api/sales", Some(&owner), new_sale(id)).await, StatusCode::CREATED).await;
    assert_eq!(sale["merchant_id"], product["merchant_id"], "{sale}");
    // An admin may set up a sale of any product; the sale is the product's merchant's.
    let admin = minted(&shop, Role::Admin, 900_001);
    let by_admin = assert_status(shop.post("/api/sales", Some(&admin), new_sale(id)).await, StatusCode::CREATED).await;
    assert_eq!(by_admin["merchant_id"], product["merchant_id"], "{by_admin}");
    let shopper = minted(&shop, Role::Shopper, 900_002);
    assert_problem(shop.post("/api/sales", Some(&shopper), new_sale(id)).await, StatusCode::FORBIDDEN, "FORBIDDEN")
        .await;
}

crate::in_both_modes!(a_sale_of_a_product_that_does_not_exist_is_refused, a_merchant_sells_only_their_own_products);

/// The FlashSale path refuses the same products (its `POST /api/sales` twin above).
async fn a_manifest_for_another_merchants_product_fails(shop: TestShop) {
    let (owner, rival) = (shop.merchant().await, shop.merchant().await);
    let product = create_product(&shop, &owner, "Poster", 10).await["id"].as_i64().unwrap();
    let at = |d: chrono::Duration| (chrono::Utc::now() + d).to_rfc3339();
    let manifest = json!({
        "apiVersion": "goodsmall.io/v1alpha1", "kind": "FlashSale", "metadata": { "name": "not-mine" },
        "spec": { "productId": product, "stock": 3, "price": "9.00", "perUserLimit": 1,
                  "opensAt": at(chrono::Duration::zero()), "closesAt": at(chrono::Duration::hours(1)) }
    });
    assert_status(
        shop.call(Method::PUT, "/api/flashsales/not-mine", Some(&rival), Some(manifest)).await,
        StatusCode::CREATED,
    )
    .await;
    let failed = shop.eventually("/api/flashsales/not-mine", Some(&rival), |f| f["status"]["phase"] == "Failed").await;
    let ready = failed["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .cloned()
        .unwrap_or_default();
    assert_eq!(ready["reason"], "ProductNotYours", "{failed}");
    assert!(failed["status"]["saleId"].is_null(), "no sale was made: {failed}");
}

mod embedded_only {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_manifest_for_another_merchants_product_fails() {
        super::a_manifest_for_another_merchants_product_fails(crate::helpers::TestShop::embedded_with(&[]).await).await
    }
}
