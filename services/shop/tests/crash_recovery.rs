//! `kill -9` of the order and the payment service in the middle of a drop, on MariaDB,
//! Redis and a Kafka broker, each service its own process (the built binaries). After
//! both are restarted and everything has settled: every order a shopper was told about
//! (202) exists, every order is terminal, nothing is oversold, and
//! `stock = remaining + sold` holds in Redis and matches the paid orders in MySQL.

use std::{
    collections::{HashMap, HashSet},
    process::{Child, Command},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use goodsmall_platform::auth::{KeyPair, KeySettings, Role, TokenSigner};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::Row;

const STOCK: i64 = 100;
const BUYERS: i64 = 300;

/// The service binaries, brought up to date once per run (a no-op when the workspace
/// build already made them).
fn binary(name: &str) -> std::path::PathBuf {
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

struct Service {
    name: &'static str,
    env: Vec<(String, String)>,
    port: u16,
    child: Option<Child>,
    log: std::path::PathBuf,
}

impl Service {
    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn start(&mut self, client: &reqwest::Client) {
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
                panic!("{} exited ({status}):\n{}", self.name, std::fs::read_to_string(&self.log).unwrap_or_default());
            }
            assert!(started.elapsed() < Duration::from_secs(30), "{} not ready in 30 s:\n{}", self.name, std::fs::read_to_string(&self.log).unwrap_or_default());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGKILL: no shutdown hook, no drain, no flush.
    fn kill_9(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().unwrap();
        child.wait().unwrap();
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

/// POSTs until the service answers (it may be dead or restarting), with the same
/// Idempotency-Key every time, as a shopper's retrying client would.
async fn post_until_answered(client: &reqwest::Client, url: &str, token: &str, key: &str, body: Option<Value>) -> (StatusCode, Value) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut request = client.post(url).bearer_auth(token).header("Idempotency-Key", key).timeout(Duration::from_secs(10));
        if let Some(body) = &body {
            request = request.json(body);
        }
        match request.send().await {
            Ok(r) if r.status() != StatusCode::SERVICE_UNAVAILABLE && !r.status().is_server_error() => {
                let status = r.status();
                return (status, r.json().await.unwrap_or(Value::Null));
            }
            _ => {
                assert!(Instant::now() < deadline, "{url} never answered");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_order_and_payment_services_mid_drop_loses_nothing_and_oversells_nothing() {
    let redis = goodsmall_testkit::redis_url().await;
    let brokers = goodsmall_testkit::kafka_brokers().await;
    let (order_db, payment_db) = (goodsmall_testkit::mysql_url("crash_order").await, goodsmall_testkit::mysql_url("crash_payment").await);
    let keys = KeyPair::generate();
    let namespace = goodsmall_testkit::unique_name("crash");
    let logs = std::env::temp_dir().join(goodsmall_testkit::unique_name("crash-logs"));
    std::fs::create_dir_all(&logs).unwrap();
    let common = vec![
        ("GOODSMALL_REDIS__URL".to_owned(), redis.clone()),
        ("GOODSMALL_AUTH__PUBLIC_KEY_PEM".to_owned(), keys.public_pem.clone()),
        ("GOODSMALL_KAFKA__BROKERS".to_owned(), brokers),
        ("GOODSMALL_KAFKA__NAMESPACE".to_owned(), namespace),
        // A killed member's partitions move after its session timeout: keep it short.
        ("GOODSMALL_KAFKA__SESSION_TIMEOUT_MS".to_owned(), "3000".to_owned()),
        ("GOODSMALL_LOG__FILTER".to_owned(), "info".to_owned()),
    ];
    let with = |extra: &[(&str, &str)]| {
        let mut env = common.clone();
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        env
    };
    let mut order = Service {
        name: "goodsmall-order",
        env: with(&[
            ("GOODSMALL_ORDER__DATABASE__URL", &order_db),
            ("GOODSMALL_ORDER__LIFECYCLE__ORPHAN_GRACE_SECS", "2"),
            ("GOODSMALL_ORDER__LIFECYCLE__TICK_MILLIS", "200"),
        ]),
        port: free_port(),
        child: None,
        log: logs.join("order.log"),
    };
    let mut payment = Service {
        name: "goodsmall-payment",
        env: with(&[
            ("GOODSMALL_PAYMENT__DATABASE__URL", &payment_db),
            ("GOODSMALL_PAYMENT__TIMEOUT_SECS", "4"),
            ("GOODSMALL_PAYMENT__EXPIRY_TICK_MILLIS", "100"),
            ("GOODSMALL_PAYMENT__SIMULATED_PSP__FAILURE_RATE", "0.2"),
            ("GOODSMALL_PAYMENT__SIMULATED_PSP__LATENCY_MILLIS", "5"),
        ]),
        port: free_port(),
        child: None,
        log: logs.join("payment.log"),
    };
    let client = reqwest::Client::new();
    order.start(&client).await;
    payment.start(&client).await;

    let signer = TokenSigner::new(&keys.private_pem, KeySettings::default().issuer(), Duration::from_secs(3600)).unwrap();
    let merchant = signer.issue(1, Role::Merchant, "merchant").unwrap();
    let now = chrono::Utc::now();
    let sale = json!({ "product_id": 1, "stock": STOCK, "price": "49.00", "per_user_limit": 1,
        "opens_at": now.to_rfc3339(), "closes_at": (now + chrono::Duration::hours(1)).to_rfc3339() });
    let created = client.post(format!("{}/api/sales", order.base())).bearer_auth(&merchant).json(&sale).send().await.unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let sale_id = created.json::<Value>().await.unwrap()["id"].as_i64().unwrap();

    // The crowd buys (and most pay) while the services are killed and restarted.
    let told: Arc<Mutex<HashMap<i64, String>>> = Arc::default();
    let answers: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let mut crowd = tokio::task::JoinSet::new();
    for buyer in 100..100 + BUYERS {
        let (client, told, answers, token) = (client.clone(), told.clone(), answers.clone(), signer.issue(buyer, Role::Shopper, &format!("s{buyer}")).unwrap());
        let (order_base, payment_base) = (order.base(), payment.base());
        crowd.spawn(async move {
            tokio::time::sleep(Duration::from_millis((buyer % 50) as u64 * 40)).await;
            let url = format!("{order_base}/api/sales/{sale_id}/purchases");
            let (status, body) = post_until_answered(&client, &url, &token, &format!("buy-{buyer}"), Some(json!({ "quantity": 1 }))).await;
            *answers.lock().unwrap().entry(format!("{status} {}", body["code"].as_str().unwrap_or(""))).or_default() += 1;
            if status != StatusCode::ACCEPTED {
                assert!(["SOLD_OUT", "INSUFFICIENT_STOCK"].contains(&body["code"].as_str().unwrap_or("")), "{status} {body}");
                return;
            }
            let order_id = body["order_id"].as_str().unwrap().to_owned();
            told.lock().unwrap().insert(buyer, order_id.clone());
            if buyer % 5 == 0 {
                return; // never pays: expires
            }
            let url = format!("{payment_base}/api/payments/{order_id}");
            for _ in 0..300 {
                let (status, _) = post_until_answered(&client, &url, &token, &format!("pay-{order_id}"), None).await;
                if status != StatusCode::NOT_FOUND {
                    return; // paid, declined, or already expired
                }
                tokio::time::sleep(Duration::from_millis(100)).await; // the payment is not open yet
            }
        });
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    order.kill_9();
    tokio::time::sleep(Duration::from_millis(300)).await;
    order.start(&client).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    payment.kill_9();
    tokio::time::sleep(Duration::from_millis(300)).await;
    payment.start(&client).await;
    crowd.join_all().await;
    let told = told.lock().unwrap().clone();

    // Everything settles: no order left PROCESSING, nothing left reserved.
    sqlx::any::install_default_drivers();
    let db = sqlx::AnyPool::connect(&order_db).await.unwrap();
    let mut conn = redis::Client::open(redis.as_str()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let (statuses, counters) = loop {
        let rows = sqlx::query("SELECT o.id, o.status, l.quantity FROM orders o JOIN order_lines l ON l.order_id = o.id WHERE o.sale_id = ?")
            .bind(sale_id)
            .fetch_all(&db)
            .await
            .unwrap();
        let statuses: HashMap<String, (String, i64)> =
            rows.iter().map(|r| (r.get::<String, _>("id"), (r.get::<String, _>("status"), r.get::<i64, _>("quantity")))).collect();
        let counters: HashMap<String, i64> = redis::AsyncCommands::hgetall(&mut conn, goodsmall_sale::keys::sale(sale_id)).await.unwrap();
        let settled = statuses.values().all(|(s, _)| s != "PROCESSING") && counters.get("reserved") == Some(&0);
        if settled {
            break (statuses, counters);
        }
        assert!(Instant::now() < deadline, "not settled in 60 s: {counters:?}, {} processing", statuses.values().filter(|(s, _)| s == "PROCESSING").count());
        tokio::time::sleep(Duration::from_millis(250)).await;
    };

    let missing: Vec<&String> = told.values().filter(|id| !statuses.contains_key(*id)).collect();
    assert!(missing.is_empty(), "orders answered 202 but lost: {missing:?}");
    let distinct: HashSet<&String> = told.values().collect();
    assert_eq!(distinct.len(), told.len(), "one order per buyer (retries reused theirs)");
    let sold_by_orders: i64 = statuses.values().filter(|(s, _)| s == "COMPLETE").map(|(_, q)| q).sum();
    let (remaining, sold) = (counters["remaining"], counters["sold"]);
    assert_eq!(remaining + sold, STOCK, "conservation in Redis: {counters:?}");
    assert_eq!(sold, sold_by_orders, "Redis and MySQL agree on what was sold: {counters:?}");
    let answers = answers.lock().unwrap().clone();
    assert!(told.len() as i64 >= STOCK.min(BUYERS), "the crowd bought the stock: {} accepted; answers {answers:?}; {counters:?}", told.len());
    let _ = std::fs::remove_dir_all(&logs);
}
