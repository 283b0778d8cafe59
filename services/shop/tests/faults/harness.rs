//! What every fault test shares: the order and payment services as real processes (the
//! built binaries) on Redis, MariaDB and Kafka; a crowd of shoppers that buy, retry and
//! pay the way a real client would; and the checks that must hold once the saga has
//! settled, whatever was killed on the way.

use std::{
    collections::{HashMap, HashSet},
    path::PathBuf,
    process::{Child, Command},
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use goodsmall_platform::auth::{KeyPair, KeySettings, Role, TokenSigner};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::Row;

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

/// What the crowd saw.
#[derive(Default)]
pub struct Seen {
    /// buyer → the order id a 202 told them.
    pub told: HashMap<i64, String>,
    /// "status CODE" → how many final answers.
    pub answers: HashMap<String, usize>,
    /// Attempts that got no answer (refused, reset, timed out) or a 5xx, by what happened.
    pub failed_attempts: HashMap<String, usize>,
    /// Buyers whose purchase succeeded only after at least one failed attempt.
    pub accepted_after_retry: usize,
    /// Every 5xx body, for the problem-document checks.
    pub server_errors: Vec<(StatusCode, String, Value)>,
}

/// Shoppers buying one unit each (the same Idempotency-Key on every retry), four in
/// five then paying, spread over the given replicas: a shopper whose replica does not
/// answer tries the next one, as a client behind a load balancer would.
pub struct Crowd {
    pub seen: Arc<Mutex<Seen>>,
    /// Purchases sent and not answered yet.
    pub in_flight: Arc<AtomicUsize>,
    tasks: tokio::task::JoinSet<()>,
}

impl Crowd {
    pub fn start(stack: &Stack, sale_id: i64, buyers: std::ops::Range<i64>, orders: Vec<String>, payments: Vec<String>) -> Crowd {
        let seen: Arc<Mutex<Seen>> = Arc::default();
        let in_flight: Arc<AtomicUsize> = Arc::default();
        let signer = stack.signer();
        let (orders, payments) = (Arc::new(orders), Arc::new(payments));
        let mut tasks = tokio::task::JoinSet::new();
        for buyer in buyers {
            let token = signer.issue(buyer, Role::Shopper, &format!("s{buyer}")).unwrap();
            let (client, seen, in_flight, orders, payments) =
                (stack.client.clone(), seen.clone(), in_flight.clone(), orders.clone(), payments.clone());
            tasks.spawn(async move {
                // Arrivals spread over two seconds, as at a real opening.
                tokio::time::sleep(Duration::from_millis((buyer % 50) as u64 * 40)).await;
                let path = format!("/api/sales/{sale_id}/purchases");
                in_flight.fetch_add(1, Ordering::SeqCst);
                let (status, body, retried) =
                    post_until_answered(&client, &orders, buyer as usize, &path, &token, &format!("buy-{buyer}"), Some(json!({ "quantity": 1 })), &seen).await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
                {
                    let mut seen = seen.lock().unwrap();
                    *seen.answers.entry(format!("{status} {}", body["code"].as_str().unwrap_or(""))).or_default() += 1;
                    if status == StatusCode::ACCEPTED {
                        seen.told.insert(buyer, body["order_id"].as_str().unwrap().to_owned());
                        seen.accepted_after_retry += usize::from(retried);
                    }
                }
                if status != StatusCode::ACCEPTED {
                    assert!(["SOLD_OUT", "INSUFFICIENT_STOCK"].contains(&body["code"].as_str().unwrap_or("")), "{status} {body}");
                    return;
                }
                if buyer % 5 == 0 {
                    return; // never pays: expires
                }
                let order_id = body["order_id"].as_str().unwrap().to_owned();
                let path = format!("/api/payments/{order_id}");
                let deadline = Instant::now() + PATIENCE;
                loop {
                    let (status, _, _) = post_until_answered(&client, &payments, buyer as usize, &path, &token, &format!("pay-{order_id}"), None, &seen).await;
                    if status != StatusCode::NOT_FOUND || Instant::now() > deadline {
                        return; // paid, declined, or already expired
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await; // the payment is not open yet
                }
            });
        }
        Crowd { seen, in_flight, tasks }
    }

    pub fn accepted(&self) -> usize {
        self.seen.lock().unwrap().told.len()
    }

    /// Waits until at least `n` purchases were accepted.
    pub async fn wait_accepted(&self, n: usize) {
        let started = Instant::now();
        while self.accepted() < n {
            assert!(started.elapsed() < PATIENCE, "only {} purchases accepted in {PATIENCE:?}", self.accepted());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn finish(mut self) -> Seen {
        while let Some(done) = self.tasks.join_next().await {
            done.expect("a shopper's task panicked");
        }
        Arc::try_unwrap(self.seen).ok().expect("the crowd is done").into_inner().unwrap()
    }
}

/// POSTs until some replica answers with anything but a 5xx, with the same
/// Idempotency-Key every time; `true` as the third value when an attempt failed first.
#[allow(clippy::too_many_arguments)]
async fn post_until_answered(
    client: &reqwest::Client,
    bases: &[String],
    first: usize,
    path: &str,
    token: &str,
    key: &str,
    body: Option<Value>,
    seen: &Mutex<Seen>,
) -> (StatusCode, Value, bool) {
    let deadline = Instant::now() + PATIENCE;
    let mut retried = false;
    for attempt in 0.. {
        let base = &bases[(first + attempt) % bases.len()];
        let mut request = client.post(format!("{base}{path}")).bearer_auth(token).header("Idempotency-Key", key).timeout(Duration::from_secs(10));
        if let Some(body) = &body {
            request = request.json(body);
        }
        let failure = match request.send().await {
            Ok(r) if !r.status().is_server_error() => {
                let status = r.status();
                return (status, r.json().await.unwrap_or(Value::Null), retried);
            }
            Ok(r) => {
                let status = r.status();
                let content_type = r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                let problem = r.json().await.unwrap_or(Value::Null);
                let what = format!("{status} {}", problem["code"].as_str().unwrap_or(""));
                seen.lock().unwrap().server_errors.push((status, content_type, problem));
                what
            }
            Err(e) if e.is_connect() => "connection refused".to_owned(),
            Err(e) if e.is_timeout() => "timed out".to_owned(),
            Err(_) => "connection lost".to_owned(),
        };
        *seen.lock().unwrap().failed_attempts.entry(failure).or_default() += 1;
        retried = true;
        assert!(Instant::now() < deadline, "{path} never answered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    unreachable!()
}

/// The sale once the saga has settled: no order of it PROCESSING, nothing reserved.
pub struct Settled {
    /// order id → (status, quantity)
    pub orders: HashMap<String, (String, i64)>,
    pub counters: HashMap<String, i64>,
}

pub async fn settle(stack: &Stack, sale_id: i64) -> Settled {
    sqlx::any::install_default_drivers();
    let db = sqlx::AnyPool::connect(&stack.order_db).await.unwrap();
    let mut conn = redis::Client::open(stack.redis.as_str()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let started = Instant::now();
    loop {
        let rows = sqlx::query("SELECT o.id, o.status, l.quantity FROM orders o JOIN order_lines l ON l.order_id = o.id WHERE o.sale_id = ?")
            .bind(sale_id)
            .fetch_all(&db)
            .await
            .unwrap();
        let orders: HashMap<String, (String, i64)> =
            rows.iter().map(|r| (r.get::<String, _>("id"), (r.get::<String, _>("status"), r.get::<i64, _>("quantity")))).collect();
        let counters: HashMap<String, i64> = redis::AsyncCommands::hgetall(&mut conn, goodsmall_sale::keys::sale(sale_id)).await.unwrap();
        if orders.values().all(|(s, _)| s != "PROCESSING") && counters.get("reserved") == Some(&0) {
            db.close().await;
            return Settled { orders, counters };
        }
        let processing = orders.values().filter(|(s, _)| s == "PROCESSING").count();
        assert!(started.elapsed() < PATIENCE, "not settled in {PATIENCE:?}: {counters:?}, {processing} orders PROCESSING");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// What must hold after any fault, once settled: every order a shopper was told about
/// exists, one per shopper, all terminal; `stock = remaining + reserved + sold` in Redis;
/// Redis and MySQL agree on what was sold; nothing oversold.
pub fn assert_nothing_lost_nothing_oversold(stock: i64, seen: &Seen, settled: &Settled) {
    let missing: Vec<&String> = seen.told.values().filter(|id| !settled.orders.contains_key(*id)).collect();
    assert!(missing.is_empty(), "orders answered 202 but lost: {missing:?}");
    let distinct: HashSet<&String> = seen.told.values().collect();
    assert_eq!(distinct.len(), seen.told.len(), "one order per buyer (retries reused theirs)");
    let terminal = ["COMPLETE", "FAILED", "CANCELED"];
    let stuck: Vec<_> = settled.orders.iter().filter(|(_, (s, _))| !terminal.contains(&s.as_str())).collect();
    assert!(stuck.is_empty(), "orders not terminal: {stuck:?}");
    let c = &settled.counters;
    assert_eq!(c["remaining"] + c["reserved"] + c["sold"], stock, "conservation in Redis: {c:?}");
    let sold_by_orders: i64 = settled.orders.values().filter(|(s, _)| s == "COMPLETE").map(|(_, q)| q).sum();
    assert_eq!(c["sold"], sold_by_orders, "Redis and MySQL agree on what was sold: {c:?}");
    assert!(sold_by_orders <= stock, "oversold: {sold_by_orders} of {stock}");
}
