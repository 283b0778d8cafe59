//! What every fault test shares: the user, order and payment services as real processes
//! (the built binaries) on Redis, MariaDB and Kafka ([`Stack`], [`Service`]); a crowd of
//! shoppers that buy, retry and pay the way a real client would ([`crowd`]); sessions
//! logged out before a fault ([`sessions`]); and the checks that must hold once the saga
//! has settled, whatever was killed on the way ([`settle`]).

mod crowd;
mod sessions;
mod settle;

pub use crowd::{post_until_answered, Crowd, Seen};
/// One service process (the built binary).
pub use goodsmall_testkit::ServiceProcess as Service;
pub use sessions::Sessions;
pub use settle::{assert_nothing_lost_nothing_oversold, settle};

use std::{path::PathBuf, time::Duration};

use goodsmall_platform::auth::{KeyPair, KeySettings, Role, TokenSigner};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Generous: the services restart, groups rebalance and the broker recovers on a busy
/// 2-core machine.
pub const PATIENCE: Duration = Duration::from_secs(90);

/// Where a fault test's servers are, and the settings its services share.
pub struct Stack {
    pub redis: String,
    pub order_db: String,
    pub payment_db: String,
    pub brokers: String,
    pub namespace: String,
    pub keys: KeyPair,
    pub logs: PathBuf,
    pub client: reqwest::Client,
    /// The product service (on the run's shared MariaDB): the order service checks a
    /// sale's product there.
    pub product: Service,
    /// The user service: signs the [`Sessions`], and writes logged-out sessions back into
    /// a Redis that lost them (until it has, every service answers 503 to a token).
    pub user: Service,
}

impl Stack {
    /// On the run's shared Redis, with the given Kafka brokers and database URLs; starts
    /// the user and product services.
    pub async fn new(brokers: String, order_db: String, payment_db: String) -> Stack {
        Self::on(goodsmall_testkit::redis_url().await, brokers, order_db, payment_db).await
    }

    /// As [`new`](Self::new), on the given Redis.
    pub async fn on(redis: String, brokers: String, order_db: String, payment_db: String) -> Stack {
        let logs = std::env::temp_dir().join(goodsmall_testkit::unique_name("fault-logs"));
        std::fs::create_dir_all(&logs).unwrap();
        let mut stack = Stack {
            redis,
            order_db,
            payment_db,
            brokers,
            namespace: goodsmall_testkit::unique_name("fault"),
            keys: KeyPair::generate(),
            client: reqwest::Client::new(),
            product: Service::new("goodsmall-product", 0, Vec::new(), &logs.join("product.log")),
            user: Service::new("goodsmall-user", 0, Vec::new(), &logs.join("user.log")),
            logs,
        };
        stack.user = sessions::user_service(&stack).await;
        stack.user.start(&stack.client).await;
        let mut env = stack.common();
        env.push(("GOODSMALL_PRODUCT__DATABASE__URL".into(), goodsmall_testkit::mysql_url("fault_product").await));
        stack.product = Service::service("goodsmall-product", env, &stack.logs.join("product.log"));
        stack.product.start(&stack.client).await;
        stack
    }

    fn common(&self) -> Vec<(String, String)> {
        [
            ("GOODSMALL_REDIS__URL", self.redis.as_str()),
            ("GOODSMALL_AUTH__PUBLIC_KEY_PEM", &self.keys.public_pem),
            ("GOODSMALL_KAFKA__BROKERS", &self.brokers),
            ("GOODSMALL_KAFKA__NAMESPACE", &self.namespace),
            // A killed member's partitions move after its session timeout: keep it short.
            ("GOODSMALL_KAFKA__SESSION_TIMEOUT_MS", "3000"),
            ("GOODSMALL_LOG__FORMAT", "json"),
            ("GOODSMALL_LOG__FILTER", "info,librdkafka=warn"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// Order service replica `replica` (not started yet).
    pub fn order(&self, replica: usize) -> Service {
        let mut env = self.common();
        env.extend(
            [
                ("GOODSMALL_ORDER__DATABASE__URL", self.order_db.as_str()),
                ("GOODSMALL_ORDER__LIFECYCLE__ORPHAN_GRACE_SECS", "2"),
                ("GOODSMALL_ORDER__LIFECYCLE__TICK_MILLIS", "200"),
                ("GOODSMALL_ORDER__PRODUCT_API_URL", &self.product.base()),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        Service::service("goodsmall-order", env, &self.logs.join(format!("order-{replica}.log")))
    }

    /// Payment service replica `replica` (not started yet): unpaid orders expire after
    /// 4 s, one charge in five is declined.
    pub fn payment(&self, replica: usize) -> Service {
        let mut env = self.common();
        env.extend(
            [
                ("GOODSMALL_PAYMENT__DATABASE__URL", self.payment_db.as_str()),
                ("GOODSMALL_PAYMENT__TIMEOUT_SECS", "4"),
                ("GOODSMALL_PAYMENT__EXPIRY_TICK_MILLIS", "100"),
                ("GOODSMALL_PAYMENT__SIMULATED_PSP__FAILURE_RATE", "0.2"),
                ("GOODSMALL_PAYMENT__SIMULATED_PSP__LATENCY_MILLIS", "5"),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        Service::service("goodsmall-payment", env, &self.logs.join(format!("payment-{replica}.log")))
    }

    pub fn signer(&self) -> TokenSigner {
        TokenSigner::new(&self.keys.private_pem, KeySettings::default().issuer(), Duration::from_secs(3600)).unwrap()
    }

    /// A sale of `stock` units of a new product, one per shopper, open now for an hour.
    pub async fn open_sale(&self, order: &Service, stock: i64) -> i64 {
        let merchant = self.signer().issue(1, Role::Merchant, "merchant").unwrap();
        let product = json!({ "name": "Lightstick", "description": "limited", "price": "49.00", "quantity": 1000,
            "status": "ON_SALE" });
        let created = self
            .client
            .post(format!("{}/api/products", self.product.base()))
            .bearer_auth(&merchant)
            .json(&product)
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), StatusCode::CREATED, "{:?}", created.text().await);
        let product_id = created.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
        let now = chrono::Utc::now();
        let sale = json!({ "product_id": product_id, "stock": stock, "price": "49.00", "per_user_limit": 1,
            "opens_at": now.to_rfc3339(), "closes_at": (now + chrono::Duration::hours(1)).to_rfc3339() });
        let created = self
            .client
            .post(format!("{}/api/sales", order.base()))
            .bearer_auth(&merchant)
            .json(&sale)
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), StatusCode::CREATED, "{:?}", created.text().await);
        created.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.logs);
        }
    }
}
