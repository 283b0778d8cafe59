//! Shared steps of the drop scenarios: sales, purchases, payments, waiting for the saga.

use std::time::Duration;

use goodsmall_platform::auth::{KeySettings, Role, TokenSigner};
use reqwest::{Method, Response, StatusCode};
use serde_json::{json, Value};

use crate::{
    catalogue::create_product,
    helpers::{assert_status, TestShop},
};

/// Payments always succeed, at once; nothing expires during a test.
pub const RELIABLE_PSP: &[(&str, &str)] = &[
    ("GOODSMALL_PAYMENT__SIMULATED_PSP__FAILURE_RATE", "0"),
    ("GOODSMALL_PAYMENT__SIMULATED_PSP__LATENCY_MILLIS", "0"),
];

impl TestShop {
    /// An access token for shopper `user_id`, signed with the shop's key: big crowds
    /// of buyers without signing each one up.
    pub fn minted_shopper(&self, user_id: i64) -> String {
        let signer =
            TokenSigner::new(&self.keys.private_pem, KeySettings::default().issuer(), Duration::from_secs(900))
                .unwrap();
        signer.issue(user_id, Role::Shopper, &format!("test-session-{user_id}")).unwrap()
    }

    /// A product of `stock` units and a sale of `sale_stock` of it, open now unless
    /// `opens_in_secs` says later. Returns (product id, sale id).
    pub async fn drop_of(
        &self,
        merchant: &str,
        sale_stock: i64,
        per_user_limit: i64,
        opens_in_secs: i64,
    ) -> (i64, i64) {
        let product = create_product(self, merchant, "Limited Lightstick", 1000).await["id"].as_i64().unwrap();
        let opens_at = chrono::Utc::now() + chrono::Duration::seconds(opens_in_secs);
        let sale = json!({
            "product_id": product, "stock": sale_stock, "price": "49.00", "per_user_limit": per_user_limit,
            "opens_at": opens_at.to_rfc3339(), "closes_at": (opens_at + chrono::Duration::hours(1)).to_rfc3339(),
        });
        let created = assert_status(self.post("/api/sales", Some(merchant), sale).await, StatusCode::CREATED).await;
        (product, created["id"].as_i64().unwrap())
    }

    pub async fn buy(&self, token: &str, sale_id: i64, key: &str, quantity: i64) -> Response {
        self.client
            .post(self.url(&format!("/api/sales/{sale_id}/purchases")))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(&json!({ "quantity": quantity }))
            .send()
            .await
            .unwrap_or_else(|e| panic!("purchase request failed: {e:?}"))
    }

    /// Buys and expects 202: the order id.
    pub async fn bought(&self, token: &str, sale_id: i64, quantity: i64) -> String {
        let key = uuid::Uuid::new_v4().to_string();
        let accepted = assert_status(self.buy(token, sale_id, &key, quantity).await, StatusCode::ACCEPTED).await;
        accepted["order_id"].as_str().unwrap().to_owned()
    }

    pub async fn pay(&self, token: &str, order_id: &str) -> Response {
        self.client
            .post(self.url(&format!("/api/payments/{order_id}")))
            .bearer_auth(token)
            .header("Idempotency-Key", format!("pay-{order_id}"))
            .send()
            .await
            .expect("request sent")
    }

    /// Pays once the payment service has opened the payment (it follows `order.created`).
    pub async fn pay_when_due(&self, token: &str, order_id: &str) -> Response {
        self.eventually(&format!("/api/payments/{order_id}"), Some(token), |p| p["status"] == "PENDING").await;
        self.pay(token, order_id).await
    }

    /// Polls `path` until `done` holds (10 s at most); returns the last document.
    pub async fn eventually(&self, path: &str, token: Option<&str>, done: impl Fn(&Value) -> bool) -> Value {
        let mut last = Value::Null;
        for _ in 0..200 {
            let response = self.get(path, token).await;
            if response.status() == StatusCode::OK {
                last = response.json().await.unwrap();
                if done(&last) {
                    return last;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{path} did not reach the expected state within 10 s; last: {last}")
    }

    pub async fn order_reaches(&self, token: &str, order_id: &str, status: &str) -> Value {
        self.eventually(&format!("/api/orders/{order_id}"), Some(token), |o| o["status"] == status).await
    }

    /// The sale's live counters once nothing is reserved any more.
    pub async fn settled_sale(&self, sale_id: i64) -> Value {
        let path = format!("/api/sales/{sale_id}");
        let sale = self.eventually(&path, None, |s| s["reserved"] == 0).await;
        assert_eq!(
            sale["stock"].as_i64().unwrap(),
            sale["remaining"].as_i64().unwrap() + sale["sold"].as_i64().unwrap(),
            "conservation: {sale}"
        );
        sale
    }

    /// Waits until the sale shows `remaining` and `sold` with nothing reserved (a refund's release follows
    /// `payment.refunded` asynchronously, so `reserved == 0` alone is not enough), then checks conservation.
    pub async fn sale_settles_at(&self, sale_id: i64, remaining: i64, sold: i64) -> Value {
        let path = format!("/api/sales/{sale_id}");
        self.eventually(&path, None, |s| s["reserved"] == 0 && s["remaining"] == remaining && s["sold"] == sold).await;
        self.settled_sale(sale_id).await
    }

    pub async fn cancel(&self, token: &str, order_id: &str) -> Response {
        self.call(Method::POST, &format!("/api/orders/{order_id}/cancel"), Some(token), None).await
    }
}
