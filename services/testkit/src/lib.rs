//! Real infrastructure for tests. `scripts/test.sh` starts one private Redis and one
//! private MariaDB per test run and exports their addresses; these helpers hand each
//! test its own empty Redis database and MySQL schema on them, and start a real SMTP
//! server (aiosmtpd) per test. A missing server is a failure that names the fix,
//! never a silent skip.

mod smtp;

pub use smtp::{ReceivedMail, SmtpSink};

use rand::Rng;

pub const REDIS_ENV: &str = "TESTKIT_REDIS_URL";
pub const MYSQL_ENV: &str = "TESTKIT_MYSQL_URL";

const HOW_TO_RUN: &str = "run the tests with `scripts/test.sh` (it installs and starts a private Redis and MariaDB)";

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
