//! Private servers a single test owns, for the fault tests that kill them: an Apache
//! Kafka broker (through `scripts/kafka.sh`, the same one `scripts/test.sh` runs), a
//! MariaDB server (Debian's `mariadbd`, as in `scripts/lib/servers.sh`) and a Redis
//! server (without persistence, as the run's). Each can be killed with SIGKILL and
//! started again on the same data and port. Dropping one kills it and removes its
//! folder. A server that cannot start is a panic that shows its log and names the fix.

use std::{
    future::Future,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::{free_port, repo_root, unique_name};

const START_PATIENCE: Duration = Duration::from_secs(90);

fn log_of(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn append_to(path: &Path) -> std::fs::File {
    std::fs::OpenOptions::new().create(true).append(true).open(path).expect("a log file")
}

/// What every private server is: a process, its folder and its log. Dropping it kills
/// the process and removes the folder.
struct Server {
    /// "the private Redis", for messages.
    what: &'static str,
    dir: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl Server {
    /// A new folder named after `prefix`, logging to `log` in it.
    fn new(what: &'static str, prefix: &str, log: &str) -> Server {
        let dir = std::env::temp_dir().join(unique_name(prefix));
        std::fs::create_dir_all(&dir).unwrap();
        Server { what, log: dir.join(log), dir, child: None }
    }

    /// Runs `command` with its output in the log; `missing` says how to get the program.
    fn spawn(&mut self, command: &mut Command, missing: &str) {
        assert!(self.child.is_none(), "kill {} before starting it again", self.what);
        let child = command.stdin(Stdio::null()).stdout(append_to(&self.log)).stderr(append_to(&self.log)).spawn();
        self.child = Some(child.unwrap_or_else(|e| panic!("cannot start {} ({e}): {missing}", self.what)));
    }

    /// Waits until `ready` says so; a process that exits first is a panic with its log
    /// and `fix`.
    async fn await_ready<F: Future<Output = bool>>(&mut self, mut ready: impl FnMut() -> F, fix: &str) {
        let started = Instant::now();
        while !ready().await {
            if let Some(status) = self.child.as_mut().expect("started").try_wait().unwrap() {
                panic!("{} exited ({status}){fix}. Its log:\n{}", self.what, log_of(&self.log));
            }
            assert!(
                started.elapsed() < START_PATIENCE,
                "{} did not start in {START_PATIENCE:?}:\n{}",
                self.what,
                log_of(&self.log)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: no shutdown, no flush.
    fn kill_9(&mut self) {
        let mut child = self.child.take().unwrap_or_else(|| panic!("{} is not running", self.what));
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.kill_9();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A single-node Apache Kafka (KRaft) broker of one test.
pub struct KafkaBroker {
    server: Server,
    port: u16,
    starts: usize,
}

impl KafkaBroker {
    pub async fn start() -> KafkaBroker {
        let mut broker = KafkaBroker {
            server: Server::new("the private Kafka broker", "kafka-broker", "broker.log"),
            port: 0,
            starts: 0,
        };
        broker.launch().await;
        broker.port = std::fs::read_to_string(broker.server.dir.join("data-dir/port"))
            .expect("kafka.sh writes the port")
            .trim()
            .parse()
            .expect("a port number");
        broker
    }

    /// `host:port` for `kafka.brokers`.
    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// SIGKILL: no shutdown, no flush of what the broker had not yet written.
    pub fn kill_9(&mut self) {
        self.server.kill_9();
    }

    /// Starts the broker again on the same data and port.
    pub async fn restart(&mut self) {
        self.launch().await;
    }

    async fn launch(&mut self) {
        let script = repo_root().join("scripts/kafka.sh");
        let mut command = Command::new(&script);
        command.arg("run").arg(self.server.dir.join("data-dir")).env("KAFKA_HEAP", "256m");
        self.server.spawn(&mut command, &format!("run {}", script.display()));
        self.starts += 1;
        let (log, starts) = (self.server.log.clone(), self.starts);
        let fix =
            "; run `scripts/kafka.sh fetch` (needs java and mvn: apt-get install -y openjdk-17-jre-headless maven)";
        self.server
            .await_ready(|| std::future::ready(log_of(&log).matches("Kafka Server started").count() >= starts), fix)
            .await;
    }
}

/// A MariaDB server of one test, with root and no password on a free loopback port.
pub struct MariaDb {
    server: Server,
    port: u16,
}

impl MariaDb {
    pub async fn start() -> MariaDb {
        let server = Server::new("the private MariaDB", "mariadb", "mariadb.log");
        std::fs::create_dir_all(server.dir.join("data")).unwrap();
        let install = Command::new("mariadb-install-db")
            .args(["--no-defaults", "--skip-test-db", "--auth-root-authentication-method=normal"])
            .arg(format!("--datadir={}", server.dir.join("data").display()))
            .stdout(append_to(&server.log))
            .stderr(append_to(&server.log))
            .status()
            .unwrap_or_else(|e| panic!("cannot run mariadb-install-db ({e}): apt-get install -y mariadb-server"));
        assert!(install.success(), "mariadb-install-db failed:\n{}", log_of(&server.log));
        let mut server = MariaDb { server, port: free_port() };
        server.launch().await;
        server
    }

    /// A URL to database `name` on this server (created by the service that connects).
    pub fn url(&self, name: &str) -> String {
        format!("mysql://root@127.0.0.1:{}/{name}", self.port)
    }

    /// SIGKILL: the server is gone at once; InnoDB recovers at the next start.
    pub fn kill_9(&mut self) {
        self.server.kill_9();
    }

    /// Starts the server again on the same data and port.
    pub async fn restart(&mut self) {
        self.launch().await;
    }

    async fn launch(&mut self) {
        let mariadbd =
            ["/usr/sbin/mariadbd", "mariadbd"].into_iter().find(|p| Path::new(p).exists()).unwrap_or("mariadbd");
        let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
        let dir = &self.server.dir;
        let mut command = Command::new(mariadbd);
        command
            .arg("--no-defaults")
            .arg(format!("--datadir={}", dir.join("data").display()))
            .arg(format!("--socket={}", dir.join("sock").display()))
            .arg(format!("--port={}", self.port))
            .args(["--bind-address=127.0.0.1", "--skip-log-bin", "--innodb-flush-log-at-trx-commit=2"])
            .args(["--innodb-buffer-pool-size=64M", "--max-connections=500", &format!("--user={user}")]);
        self.server.spawn(&mut command, "apt-get install -y mariadb-server");
        let port = self.port;
        let ready = || {
            let answered = Command::new("mariadb")
                .args(["--no-defaults", "-uroot", "-h127.0.0.1", &format!("-P{port}"), "-e", "SELECT 1"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            std::future::ready(answered)
        };
        self.server.await_ready(ready, "").await;
    }
}

/// A Redis server of one test, without persistence (as `scripts/lib/servers.sh` starts
/// the run's): killed and started again, it comes back empty on the same port.
pub struct RedisServer {
    server: Server,
    port: u16,
}

impl RedisServer {
    pub async fn start() -> RedisServer {
        let mut server =
            RedisServer { server: Server::new("the private Redis", "redis", "redis.log"), port: free_port() };
        server.launch().await;
        server
    }

    /// `redis://…/0` for `redis.url`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// SIGKILL: every key is gone with it.
    pub fn kill_9(&mut self) {
        self.server.kill_9();
    }

    /// Starts the server again, empty, on the same port.
    pub async fn restart(&mut self) {
        self.launch().await;
    }

    async fn launch(&mut self) {
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.server.dir);
        self.server.spawn(&mut command, "apt-get install -y redis-server");
        let client = redis::Client::open(self.url()).expect("a Redis URL");
        let ready = || {
            let client = client.clone();
            async move {
                let Ok(mut conn) = client.get_multiplexed_async_connection().await else { return false };
                redis::cmd("PING").query_async::<String>(&mut conn).await.is_ok()
            }
        };
        self.server.await_ready(ready, "").await;
    }
}
