//! What every fault test shares: the order and payment services as real processes (the
//! built binaries) on Redis, MariaDB and Kafka ([`Stack`], [`Service`]); a crowd of
//! shoppers that buy, retry and pay the way a real client would ([`crowd`]); and the
//! checks that must hold once the saga has settled, whatever was killed on the way
//! ([`settle`]).

mod crowd;
mod settle;

pub use crowd::{Crowd, Seen};
pub use settle::{assert_nothing_lost_nothing_oversold, settle};

use std::{
    collections::HashSet,
    path::PathBuf,
    process::{Child, Command},
    time::{Duration, Instant},
};

use goodsmall_platform::auth::{KeyPair, KeySettings, Role, TokenSigner};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Generous: the services restart, groups rebalance and the broker recovers on a busy
/// 2-core machine.
pub const PATIENCE: Duration = Duration::from_secs(90);

/// The service binaries, brought up to date once per run (a no-op when the workspace
/// build already made them).
fn binary(name: &str) -> PathBuf {
    static BUILT: std::sync::Once = std::sync::Once::new();
    BUILT.call_once(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo).args(["build", "-p", "goodsmall-order", "-p", "goodsmall-payment"]).status().expect("cargo runs");
        assert!(status.success(), "building the service binaries failed: run `cargo build -p goodsmall-order -p goodsmall-payment`");
    });
    std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().join(name)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

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
}

impl Stack {
    /// On the run's shared Redis, with the given Kafka brokers and database URLs.
    pub async fn new(brokers: String, order_db: String, payment_db: String) -> Stack {
        let logs = std::env::temp_dir().join(goodsmall_testkit::unique_name("fault-logs"));
        std::fs::create_dir_all(&logs).unwrap();
        Stack {
            redis: goodsmall_testkit::redis_url().await,
            order_db,
            payment_db,
            brokers,
            namespace: goodsmall_testkit::unique_name("fault"),
            keys: KeyPair::generate(),
            logs,
            client: reqwest::Client::new(),
        }
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
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        Service::new("goodsmall-order", replica, env, &self.logs)
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
        Service::new("goodsmall-payment", replica, env, &self.logs)
    }

    pub fn signer(&self) -> TokenSigner {
        TokenSigner::new(&self.keys.private_pem, KeySettings::default().issuer(), Duration::from_secs(3600)).unwrap()
    }

    /// A sale of `stock` units, one per shopper, open now for an hour.
    pub async fn open_sale(&self, order: &Service, stock: i64) -> i64 {
        let merchant = self.signer().issue(1, Role::Merchant, "merchant").unwrap();
        let now = chrono::Utc::now();
        let sale = json!({ "product_id": 1, "stock": stock, "price": "49.00", "per_user_limit": 1,
            "opens_at": now.to_rfc3339(), "closes_at": (now + chrono::Duration::hours(1)).to_rfc3339() });
        let created = self.client.post(format!("{}/api/sales", order.base())).bearer_auth(&merchant).json(&sale).send().await.unwrap();
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

/// One service process.
pub struct Service {
    name: &'static str,
    env: Vec<(String, String)>,
    port: u16,
    child: Option<Child>,
    pub log: PathBuf,
}

impl Service {
    fn new(name: &'static str, replica: usize, env: Vec<(String, String)>, logs: &std::path::Path) -> Service {
        Service { name, env, port: free_port(), child: None, log: logs.join(format!("{name}-{replica}.log")) }
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub async fn start(&mut self, client: &reqwest::Client) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).unwrap();
        let child = Command::new(binary(self.name))
            .envs(self.env.iter().cloned())
            .env("GOODSMALL_HTTP__PORT", self.port.to_string())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("the service binary starts");
        self.child = Some(child);
        let started = Instant::now();
        loop {
            if let Ok(r) = client.get(format!("{}/readyz", self.base())).send().await {
                if r.status() == StatusCode::OK {
                    return;
                }
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("{} exited ({status}):\n{}", self.name, self.log_text());
            }
            assert!(started.elapsed() < Duration::from_secs(30), "{} not ready in 30 s:\n{}", self.name, self.log_text());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGKILL: no shutdown hook, no drain, no flush.
    pub fn kill_9(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The partitions this process was last given in consumer group `group` (from its
    /// "Kafka partitions assigned" log lines), as `topic:partition`; `None` if it never
    /// got an assignment.
    pub fn assigned(&self, group: &str) -> Option<HashSet<String>> {
        let mut last = None;
        for line in self.log_text().lines() {
            let Ok(entry) = serde_json::from_str::<Value>(line) else { continue };
            if entry["message"] == "Kafka partitions assigned" && entry["group"] == group {
                let partitions = entry["partitions"].as_str().unwrap_or_default();
                let mut set = HashSet::new();
                for topic_list in partitions.split_whitespace() {
                    let (topic, ids) = topic_list.rsplit_once(':').expect("topic:ids");
                    set.extend(ids.split(',').filter(|id| !id.is_empty()).map(|id| format!("{topic}:{id}")));
                }
                last = Some(set);
            }
        }
        last
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
