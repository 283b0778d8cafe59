//! What a sale reports survives a restart of the one-process shop, whose in-process
//! stock engine starts empty: a closed sale's counters come from its orders, and a
//! closed FlashSale's sale is rebuilt from them, so its status keeps following the
//! orders that settle after the restart. (The distributed deployment's equivalent, a
//! Redis that lost its keys, is `services/order/tests/durable_counters.rs`.)

use std::{path::PathBuf, time::Duration};

use goodsmall_platform::{
    auth::{KeyPair, KeySettings, Role, TokenSigner},
    configuration::Settings,
};
use goodsmall_shop::{
    configuration::ShopConfig,
    startup::{Shop, DEMO_MERCHANT_EMAIL, DEMO_MERCHANT_PASSWORD},
};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::helpers::assert_status;

/// A one-process shop on a data folder that outlives it.
struct Running {
    base: String,
    client: reqwest::Client,
    demo_sale_id: Option<i64>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn start(dir: &std::path::Path) -> Running {
    let vars = [
        ("GOODSMALL_HTTP__PORT", "0"),
        ("GOODSMALL_DATA_DIR", dir.to_str().unwrap()),
        ("GOODSMALL_DEMO", "true"),
        ("GOODSMALL_USER__PASSWORD_HASHING__MEMORY_KIB", "1024"),
        ("GOODSMALL_USER__PASSWORD_HASHING__ITERATIONS", "1"),
        ("GOODSMALL_PAYMENT__SIMULATED_PSP__FAILURE_RATE", "0"),
        ("GOODSMALL_PAYMENT__SIMULATED_PSP__LATENCY_MILLIS", "0"),
    ];
    let config = ShopConfig::load_from(None, vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
        .expect("config");
    let shutdown = CancellationToken::new();
    let shop = Shop::build(config, shutdown.clone()).await.expect("the shop starts");
    let (base, demo_sale_id) = (format!("http://{}", shop.local_addr()), shop.demo_sale_id);
    Running { base, client: reqwest::Client::new(), demo_sale_id, shutdown, task: tokio::spawn(shop.run()) }
}

impl Running {
    /// Stops as SIGTERM does: requests and workers finish, then everything is dropped.
    async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap().expect("the shop stopped cleanly");
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let response = request.send().await.expect("request sent");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.send(self.client.get(format!("{}{path}", self.base)).bearer_auth(token)).await
    }

    async fn post(&self, path: &str, token: &str, key: &str, body: Value) -> (StatusCode, Value) {
        self.send(
            self.client
                .post(format!("{}{path}", self.base))
                .bearer_auth(token)
                .header("idempotency-key", key)
                .json(&body),
        )
        .await
    }

    async fn merchant(&self) -> String {
        let (status, body) = self
            .send(
                self.client
                    .post(format!("{}/api/auth/login", self.base))
                    .json(&json!({ "email": DEMO_MERCHANT_EMAIL, "password": DEMO_MERCHANT_PASSWORD })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// Polls `path` until `done` holds (20 s at most).
    async fn eventually(&self, path: &str, token: &str, done: impl Fn(&Value) -> bool) -> Value {
        let mut last = Value::Null;
        for _ in 0..200 {
            let (status, body) = self.get(path, token).await;
            if status == StatusCode::OK && done(&body) {
                return body;
            }
            last = body;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{path} did not reach the expected state; last: {last}")
    }

    /// Pays the order once its payment is open, and waits for it to complete.
    async fn pay(&self, token: &str, order_id: &str) {
        self.eventually(&format!("/api/payments/{order_id}"), token, |p| p["status"] == "PENDING").await;
        let (status, paid) =
            self.post(&format!("/api/payments/{order_id}"), token, &format!("pay-{order_id}"), json!({})).await;
        assert_eq!(status, StatusCode::OK, "{paid}");
        self.eventually(&format!("/api/orders/{order_id}"), token, |o| o["status"] == "COMPLETE").await;
    }
}

fn data_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(goodsmall_testkit::unique_name(name));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A shopper's token, signed with the key the shop keeps in its data folder.
fn shopper(dir: &std::path::Path, user_id: i64) -> String {
    let keys = KeyPair::load_or_generate(dir).unwrap();
    TokenSigner::new(&keys.private_pem, KeySettings::default().issuer(), Duration::from_secs(900))
        .unwrap()
        .issue(user_id, Role::Shopper, "restart-test")
        .unwrap()
}

fn counters(sale: &Value) -> (i64, i64, i64) {
    (sale["remaining"].as_i64().unwrap(), sale["reserved"].as_i64().unwrap(), sale["sold"].as_i64().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_sales_counters_survive_a_restart() {
    let dir = data_dir("restart-sale");
    let shop = start(&dir).await;
    let sale = shop.demo_sale_id.expect("the demo drop");
    let (merchant, me) = (shop.merchant().await, shopper(&dir, 700_001));
    let (status, accepted) =
        shop.post(&format!("/api/sales/{sale}/purchases"), &me, "restart-1", json!({ "quantity": 1 })).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let order = accepted["order_id"].as_str().unwrap().to_owned();
    shop.pay(&me, &order).await;
    let path = format!("/api/sales/{sale}");
    shop.eventually(&path, &me, |s| counters(s) == (99, 0, 1)).await;
    let (status, _) = shop.post(&format!("/api/sales/{sale}/close"), &merchant, "close", json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, before) = shop.get(&path, &me).await;
    assert_eq!(counters(&before), (99, 0, 1), "{before}");
    shop.stop().await;

    let shop = start(&dir).await;
    let after =
        assert_status(shop.client.get(format!("{}{path}", shop.base)).send().await.unwrap(), StatusCode::OK).await;
    assert_eq!(counters(&after), (99, 0, 1), "the closed sale reads as before the restart: {after}");
    assert_eq!(shop.get(&format!("/api/orders/{order}"), &me).await.1["status"], "COMPLETE");
    shop.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_flash_sales_status_follows_its_orders_after_a_restart() {
    let dir = data_dir("restart-flashsale");
    let shop = start(&dir).await;
    let (merchant, me) = (shop.merchant().await, shopper(&dir, 700_002));
    let (_, products) = shop.get("/api/products?size=1", &me).await;
    let product = products["items"][0]["id"].as_i64().expect("a demo product");
    // Open now, closing in a few seconds: one unit is bought and left unpaid.
    let at = |secs: i64| (chrono::Utc::now() + chrono::Duration::seconds(secs)).to_rfc3339();
    let manifest = json!({
        "apiVersion": "goodsmall.io/v1alpha1", "kind": "FlashSale", "metadata": { "name": "restart-drop" },
        "spec": {
            "productId": product, "stock": 5, "price": "9.00", "perUserLimit": 1, "opensAt": at(-1), "closesAt": at(5),
        }
    });
    let put =
        shop.client.put(format!("{}/api/flashsales/restart-drop", shop.base)).bearer_auth(&merchant).json(&manifest);
    assert_eq!(shop.send(put).await.0, StatusCode::CREATED);
    let fs_path = "/api/flashsales/restart-drop";
    let open = shop.eventually(fs_path, &merchant, |f| f["status"]["phase"] == "Open").await;
    let sale = open["status"]["saleId"].as_i64().unwrap();
    let (status, accepted) =
        shop.post(&format!("/api/sales/{sale}/purchases"), &me, "restart-2", json!({ "quantity": 1 })).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let order = accepted["order_id"].as_str().unwrap().to_owned();
    shop.eventually(fs_path, &merchant, |f| f["status"]["phase"] == "Closed" && f["status"]["reserved"] == 1).await;
    shop.stop().await;

    let shop = start(&dir).await;
    let merchant = shop.merchant().await;
    shop.pay(&me, &order).await;
    let settled =
        shop.eventually(fs_path, &merchant, |f| f["status"]["reserved"] == 0 && f["status"]["sold"] == 1).await;
    assert_eq!(settled["status"]["remaining"], 4, "{settled}");
    let (_, counted) = shop.get(&format!("/api/sales/{sale}"), &me).await;
    assert_eq!(counters(&counted), (4, 0, 1), "{counted}");
    shop.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}

/// A purchase retried with its Idempotency-Key after a restart (the in-process stock
/// engine starts empty, the sale is rebuilt from the orders) gets its first order with
/// the order's status now, and takes no second unit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purchase_retried_after_a_restart_gets_its_first_order() {
    let dir = data_dir("restart-retry");
    let shop = start(&dir).await;
    let sale = shop.demo_sale_id.expect("the demo drop");
    let buy = format!("/api/sales/{sale}/purchases");
    let shoppers: Vec<(String, String)> = (0..3).map(|n| (shopper(&dir, 700_010 + n), format!("retry-{n}"))).collect();
    let mut first = Vec::new();
    for (token, key) in &shoppers {
        let (status, accepted) = shop.post(&buy, token, key, json!({ "quantity": 1 })).await;
        assert_eq!((status, &accepted["status"]), (StatusCode::ACCEPTED, &json!("PROCESSING")), "{accepted}");
        first.push(accepted["order_id"].as_str().unwrap().to_owned());
    }
    // One stays unpaid, one is paid, one is cancelled.
    shop.pay(&shoppers[1].0, &first[1]).await;
    let (status, canceled) =
        shop.post(&format!("/api/orders/{}/cancel", first[2]), &shoppers[2].0, "cancel", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{canceled}");
    let path = format!("/api/sales/{sale}");
    shop.eventually(&path, &shoppers[0].0, |s| counters(s) == (98, 1, 1)).await;
    shop.stop().await;

    let shop = start(&dir).await;
    for ((token, key), (order, status)) in shoppers.iter().zip(first.iter().zip(["PROCESSING", "COMPLETE", "CANCELED"]))
    {
        let (answer, accepted) = shop.post(&buy, token, key, json!({ "quantity": 1 })).await;
        assert_eq!(answer, StatusCode::ACCEPTED, "{accepted}");
        assert_eq!(
            (accepted["order_id"].as_str(), accepted["status"].as_str()),
            (Some(order.as_str()), Some(status)),
            "{key}: its first order, as it stands"
        );
    }
    let (_, after) = shop.get(&path, &shoppers[0].0).await;
    assert_eq!(counters(&after), (98, 1, 1), "no second unit taken: {after}");
    let (_, orders) = shop.get("/api/orders", &shoppers[0].0).await;
    assert_eq!(orders["items"].as_array().map(Vec::len), Some(1), "one order for the shopper: {orders}");
    shop.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}

/// Logout and password-change revocations are kept in the user database and written
/// back into the in-process store at start: a logged-out token stays refused after a
/// restart, in every service.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logged_out_session_stays_logged_out_after_a_restart() {
    let dir = data_dir("restart-logout");
    let shop = start(&dir).await;
    let tokens = [shop.merchant().await, shop.merchant().await, shop.merchant().await];
    let logout = shop.client.post(format!("{}/api/auth/logout", shop.base)).bearer_auth(&tokens[0]);
    assert_eq!(shop.send(logout).await.0, StatusCode::NO_CONTENT);
    let change = json!({ "current_password": DEMO_MERCHANT_PASSWORD, "new_password": "a-new-password-1" });
    let changed = shop.client.put(format!("{}/api/users/me/password", shop.base)).bearer_auth(&tokens[1]).json(&change);
    assert_eq!(shop.send(changed).await.0, StatusCode::NO_CONTENT, "revokes every session of the account");
    let login = json!({ "email": DEMO_MERCHANT_EMAIL, "password": "a-new-password-1" });
    let (status, fresh) = shop.send(shop.client.post(format!("{}/api/auth/login", shop.base)).json(&login)).await;
    assert_eq!(status, StatusCode::OK, "{fresh}");
    let fresh = fresh["access_token"].as_str().unwrap().to_owned();
    let check = |shop: Running, when: &'static str| {
        let (tokens, fresh) = (tokens.clone(), fresh.clone());
        async move {
            // One route of each service: user, product, order.
            for path in ["/api/users/me", "/api/cart", "/api/orders"] {
                for token in &tokens {
                    let (status, problem) = shop.get(path, token).await;
                    assert_eq!(
                        (status, &problem["code"]),
                        (StatusCode::UNAUTHORIZED, &json!("TOKEN_REVOKED")),
                        "{when}: {path}"
                    );
                }
                assert_eq!(shop.get(path, &fresh).await.0, StatusCode::OK, "{when}: {path} with the new session");
            }
            shop
        }
    };
    let shop = check(shop, "before the restart").await;
    shop.stop().await;
    let shop = check(start(&dir).await, "after the restart").await;
    shop.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}
