//! Real infrastructure for tests. `scripts/test.sh` starts one private Redis, one
//! private MariaDB and one private Apache Kafka broker per test run and exports their
//! addresses; these helpers hand each test its own empty Redis database and MySQL
//! schema on them, unique Kafka topic and group names, and start a real SMTP server
//! (aiosmtpd) per test; the fault tests start private servers they can kill
//! ([`KafkaBroker`], [`MariaDb`], [`RedisServer`]); the observability proofs start a real Prometheus
//! ([`prometheus`]). A missing server is a failure that names the fix, never a
//! silent skip.

pub mod chart;
mod kafka;
mod kube;
pub mod node;
mod process;
pub mod prometheus;
mod servers;
mod smtp;

pub use kafka::wait_until_consumed;
pub use kube::ControlPlane;
pub use node::Node;
pub use process::{build_binaries, cargo, free_port, ServiceProcess};
pub use servers::{KafkaBroker, MariaDb, RedisServer};
pub use smtp::{ReceivedMail, SmtpSink};

use std::path::{Path, PathBuf};

use rand::Rng;

/// Polls `check` every 20 ms until it answers `Some`, for at most `patience`, then fails
/// naming `what`: [`Node::wait_for`] for async checks. Await the condition a test
/// needs rather than sleeping a fixed time, which is too short on a busy machine and
/// too long everywhere else.
pub async fn eventually<T>(what: &str, patience: std::time::Duration, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let started = std::time::Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(started.elapsed() < patience, "{what}: not within {patience:?}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The repository's root folder.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("the repository root")
}

/// The program, or a failure that says how to install it (never a skip).
pub fn require_program(program: &str, install: &str) -> PathBuf {
    for dir in std::env::var("PATH").unwrap_or_default().split(':').chain(["/usr/bin", "/usr/sbin"]) {
        let candidate = Path::new(dir).join(program);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!("`{program}` is missing: {install} (scripts/test.sh installs it)");
}

pub const REDIS_ENV: &str = "TESTKIT_REDIS_URL";
pub const MYSQL_ENV: &str = "TESTKIT_MYSQL_URL";
pub const KAFKA_ENV: &str = "TESTKIT_KAFKA_BROKERS";

const HOW_TO_RUN: &str =
    "run the tests with `scripts/test.sh` (it installs and starts a private Redis, MariaDB and Kafka broker)";

fn required_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: {HOW_TO_RUN}"))
}

/// Databases the private Redis is started with (`--databases`); 0 holds the allocator.
pub const REDIS_DATABASES: i64 = 4096;

/// A fresh, empty Redis database on the test server, as a URL (`redis://host:port/N`).
/// Numbers come from a counter on the server, so parallel test processes never share.
pub async fn redis_url() -> String {
    let base = required_env(REDIS_ENV);
    let base = base.trim_end_matches('/');
    let client = redis::Client::open(format!("{base}/0")).expect("a Redis URL");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|e| panic!("cannot reach the test Redis at {base}: {e}; {HOW_TO_RUN}"));
    let n: i64 = redis::cmd("INCR").arg("testkit:next-database").query_async(&mut conn).await.expect("INCR");
    let db = 1 + (n - 1) % (REDIS_DATABASES - 1);
    let url = format!("{base}/{db}");
    let mut conn = redis::Client::open(url.as_str()).unwrap().get_multiplexed_async_connection().await.unwrap();
    redis::cmd("FLUSHDB").query_async::<()>(&mut conn).await.expect("FLUSHDB");
    url
}

/// A URL to a schema of its own on the test MariaDB (created on first connect by the
/// service, which creates missing databases).
pub async fn mysql_url(hint: &str) -> String {
    let base = required_env(MYSQL_ENV);
    let base = base.trim_end_matches('/');
    let tag: u32 = rand::thread_rng().gen();
    format!("{base}/t_{hint}_{}_{tag:08x}", std::process::id())
}

/// A URL to a fresh SQLite file of its own in the temp folder (created by the service,
/// which creates missing files).
pub fn sqlite_url(hint: &str) -> String {
    let file = std::env::temp_dir().join(format!("goodsmall-{}.db", unique_name(hint)));
    format!("sqlite://{}", file.display())
}

/// The test Kafka broker (`host:port`). Panics with the fix when it is not configured
/// or does not accept connections. The broker is shared by the whole run: give every
/// topic and consumer group a [`unique_name`].
pub async fn kafka_brokers() -> String {
    let brokers = required_env(KAFKA_ENV);
    let first = brokers.split(',').next().unwrap_or_default().trim().to_owned();
    match tokio::time::timeout(std::time::Duration::from_secs(5), tokio::net::TcpStream::connect(&first)).await {
        Ok(Ok(_)) => brokers,
        Ok(Err(e)) => panic!("cannot reach the test Kafka broker at {first}: {e}; {HOW_TO_RUN}"),
        Err(_) => panic!("the test Kafka broker at {first} did not accept a connection within 5 s; {HOW_TO_RUN}"),
    }
}

/// A name no other test of any run on this machine uses: `prefix`, the process id, a
/// per-process counter and a random tag (`orders-4242-3-9f1c2a7e`). Kafka topic and
/// group names allow `[a-zA-Z0-9._-]`; keep `prefix` to those.
pub fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let tag: u32 = rand::thread_rng().gen();
    format!("{prefix}-{}-{n}-{tag:08x}", std::process::id())
}
