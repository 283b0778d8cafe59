//! The workspace's binaries as real processes (the user, order, payment and product services,
//! the operator): started with an environment, awaited on `/readyz`, killed with SIGKILL,
//! their logs kept in a file. The binaries are brought up to date once per test process
//! (a no-op when the workspace build already made them).

use std::{
    collections::HashSet,
    path::{Path, PathBuf},
    process::{Child, Command},
    time::{Duration, Instant},
};

/// Every binary a test may start as a service (each package's binary has its name).
const PACKAGES: [&str; 5] =
    ["goodsmall-user", "goodsmall-order", "goodsmall-payment", "goodsmall-product", "goodsmall-operator"];

const READY_PATIENCE: Duration = Duration::from_secs(30);

/// `cargo` (the one running the tests) in the workspace, without what cargo and nextest
/// set for the test process. Those describe the test's own crate, not the build: passed
/// on, they make cargo see a changed `CARGO_MANIFEST_DIR` and `CARGO_PKG_*` (ring's build
/// script tracks them) and rebuild ring and all above it, in every test of another crate
/// and again in the next `cargo test`.
pub fn cargo() -> Command {
    const THIS_CRATE: [&str; 7] = [
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_CRATE_NAME",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_TARGET_TMPDIR",
        "CARGO_RUSTC_CURRENT_DIR",
        "OUT_DIR",
    ];
    let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cargo.current_dir(crate::repo_root());
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if ["CARGO_PKG_", "CARGO_BIN_", "NEXTEST"].iter().any(|p| name.starts_with(p))
            || THIS_CRATE.contains(&name.as_ref())
        {
            cargo.env_remove(name.as_ref());
        }
    }
    cargo
}

/// Brings the workspace's binaries up to date in the build profile of the running test
/// and returns the folder they are in, `target/<profile>`, once each of `binaries`
/// (`(package, binary)`) is there.
///
/// Always one command, `cargo build --workspace --bins --tests`, whatever the caller
/// needs: cargo unifies features over the packages a command selects (with their
/// dev-dependencies when it builds tests), so building only some packages compiled the
/// dependency tree again in a variant of its own, once per selection (four in one run,
/// minutes each). This one selects what `cargo nextest run --workspace` builds, so after
/// that build it only links the binaries no test needed.
pub fn build_binaries(binaries: &[(&str, &str)]) -> PathBuf {
    // A test runs from target/<profile>/deps/.
    let profile_dir = std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().to_owned();
    let profile = profile_dir.file_name().unwrap().to_string_lossy().into_owned();
    let mut args = ["build", "--workspace", "--bins", "--tests"].map(str::to_owned).to_vec();
    if profile != "debug" {
        args.extend(["--profile".to_owned(), profile]);
    }
    let status = cargo().args(&args).status().expect("cargo runs");
    assert!(status.success(), "building the binaries failed: run `cargo {}`", args.join(" "));
    for (package, binary) in binaries {
        assert!(profile_dir.join(binary).is_file(), "`cargo {}` made no {binary} (package {package})", args.join(" "));
    }
    profile_dir
}

fn binary(name: &str) -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| build_binaries(&PACKAGES.map(|package| (package, package)))).join(name)
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// One process of a workspace binary, serving HTTP on `port` (the caller puts the
/// port in its environment: `GOODSMALL_HTTP__PORT` for a service).
pub struct ServiceProcess {
    pub name: &'static str,
    env: Vec<(String, String)>,
    pub port: u16,
    child: Option<Child>,
    pub log: PathBuf,
}

impl ServiceProcess {
    pub fn new(name: &'static str, port: u16, env: Vec<(String, String)>, log: &Path) -> ServiceProcess {
        ServiceProcess { name, env, port, child: None, log: log.to_owned() }
    }

    /// A GoodsMall service (`GOODSMALL_HTTP__PORT` on a free port).
    pub fn service(name: &'static str, mut env: Vec<(String, String)>, log: &Path) -> ServiceProcess {
        let port = free_port();
        env.push(("GOODSMALL_HTTP__PORT".into(), port.to_string()));
        ServiceProcess::new(name, port, env, log)
    }

    /// The user service on `redis` and its own `database`, signing with the PEM pair
    /// (`private`, `public`), cheap password hashing, and `extra` settings. Every stack of
    /// separate services on Redis runs one: besides logins, it writes the logged-out
    /// sessions back into a Redis that lost them (at start too), and until it has, the
    /// others answer 503 to every bearer token.
    pub fn user_service(
        redis: &str,
        database: &str,
        (private, public): (&str, &str),
        extra: &[(&str, &str)],
        log: &Path,
    ) -> ServiceProcess {
        // Any 32 bytes, in base64: the test accounts' personal data.
        const DATA_KEY: &str = "dGVzdC1wZXJzb25hbC1kYXRhLWtleS0zMi1ieXRlcyE=";
        let settings = [
            ("GOODSMALL_REDIS__URL", redis),
            ("GOODSMALL_AUTH__PRIVATE_KEY_PEM", private),
            ("GOODSMALL_AUTH__PUBLIC_KEY_PEM", public),
            ("GOODSMALL_USER__DATABASE__URL", database),
            ("GOODSMALL_USER__DATA_KEY", DATA_KEY),
            ("GOODSMALL_USER__PASSWORD_HASHING__MEMORY_KIB", "1024"),
            ("GOODSMALL_USER__PASSWORD_HASHING__ITERATIONS", "1"),
            ("GOODSMALL_LOG__FORMAT", "json"),
        ];
        let env = settings.iter().chain(extra).map(|(k, v)| (k.to_string(), v.to_string())).collect();
        ServiceProcess::service("goodsmall-user", env, log)
    }

    /// Sets (or replaces) one variable for the next start.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value.to_owned()));
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| c.try_wait().unwrap().is_none())
    }

    /// Starts the process and waits until its `/readyz` answers 200.
    pub async fn start(&mut self, client: &reqwest::Client) {
        self.spawn();
        let started = Instant::now();
        loop {
            if let Ok(r) = client.get(format!("{}/readyz", self.base())).send().await {
                if r.status() == reqwest::StatusCode::OK {
                    return;
                }
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("{} exited ({status}):\n{}", self.name, self.log_text());
            }
            assert!(
                started.elapsed() < READY_PATIENCE,
                "{} not ready in {READY_PATIENCE:?}:\n{}",
                self.name,
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Starts the process without waiting for anything.
    pub fn spawn(&mut self) {
        assert!(self.child.is_none(), "{} is already running", self.name);
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).unwrap();
        let child = Command::new(binary(self.name))
            .envs(self.env.iter().cloned())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.name));
        self.child = Some(child);
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

    /// The JSON log lines (`GOODSMALL_LOG__FORMAT=json`) whose message is `message`.
    pub fn log_entries(&self, message: &str) -> Vec<serde_json::Value> {
        self.log_text()
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|entry| entry["message"] == message)
            .collect()
    }

    /// The partitions this process was last given in consumer group `group` (from its
    /// "Kafka partitions assigned" log lines), as `topic:partition`; `None` if it never
    /// got an assignment.
    pub fn assigned(&self, group: &str) -> Option<HashSet<String>> {
        let last = self.log_entries("Kafka partitions assigned").into_iter().rfind(|e| e["group"] == group)?;
        let mut set = HashSet::new();
        for topic_list in last["partitions"].as_str().unwrap_or_default().split_whitespace() {
            let (topic, ids) = topic_list.rsplit_once(':').expect("topic:ids");
            set.extend(ids.split(',').filter(|id| !id.is_empty()).map(|id| format!("{topic}:{id}")));
        }
        Some(set)
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
