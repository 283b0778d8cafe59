//! Private servers a single test owns, for the fault tests that kill them: an Apache
//! Kafka broker (through `scripts/kafka.sh`, the same one `scripts/test.sh` runs) and a
//! MariaDB server (Debian's `mariadbd`, as in `scripts/lib/servers.sh`). Each can be
//! killed with SIGKILL and started again on the same data and port. Dropping one kills
//! it and removes its folder. A server that cannot start is a panic that shows its log
//! and names the fix.

use std::{
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

fn kill_and_reap(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// A single-node Apache Kafka (KRaft) broker of one test.
pub struct KafkaBroker {
    dir: PathBuf,
    log: PathBuf,
    port: u16,
    starts: usize,
    child: Option<Child>,
}

impl KafkaBroker {
    pub async fn start() -> KafkaBroker {
        let dir = std::env::temp_dir().join(unique_name("kafka-broker"));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("broker.log");
        let mut broker = KafkaBroker { dir, log, port: 0, starts: 0, child: None };
        broker.launch().await;
        broker.port = std::fs::read_to_string(broker.dir.join("data-dir/port"))
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
        kill_and_reap(self.child.as_mut().expect("the broker is running"));
        self.child = None;
    }

    /// Starts the broker again on the same data and port.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "kill the broker before restarting it");
        self.launch().await;
    }

    async fn launch(&mut self) {
        let script = repo_root().join("scripts/kafka.sh");
        let child = Command::new(&script)
            .arg("run")
            .arg(self.dir.join("data-dir"))
            .env("KAFKA_HEAP", "256m")
            .stdin(Stdio::null())
            .stdout(append_to(&self.log))
            .stderr(append_to(&self.log))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        self.child = Some(child);
        self.starts += 1;
        let started = Instant::now();
        loop {
            if log_of(&self.log).matches("Kafka Server started").count() >= self.starts {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "the private Kafka broker exited ({status}); run `scripts/kafka.sh fetch` (needs java and mvn: \
                     apt-get install -y openjdk-17-jre-headless maven). Its log:\n{}",
                    log_of(&self.log)
                );
            }
            assert!(started.elapsed() < START_PATIENCE, "the private Kafka broker did not start in {START_PATIENCE:?}:\n{}", log_of(&self.log));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for KafkaBroker {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            kill_and_reap(child);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A MariaDB server of one test, with root and no password on a free loopback port.
pub struct MariaDb {
    dir: PathBuf,
    log: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl MariaDb {
    pub async fn start() -> MariaDb {
        let dir = std::env::temp_dir().join(unique_name("mariadb"));
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let log = dir.join("mariadb.log");
        let install = Command::new("mariadb-install-db")
            .args(["--no-defaults", "--skip-test-db", "--auth-root-authentication-method=normal"])
            .arg(format!("--datadir={}", dir.join("data").display()))
            .stdout(append_to(&log))
            .stderr(append_to(&log))
            .status()
            .unwrap_or_else(|e| panic!("cannot run mariadb-install-db ({e}): apt-get install -y mariadb-server"));
        assert!(install.success(), "mariadb-install-db failed:\n{}", log_of(&log));
        let port = free_port();
        let mut server = MariaDb { dir, log, port, child: None };
        server.launch().await;
        server
    }

    /// A URL to database `name` on this server (created by the service that connects).
    pub fn url(&self, name: &str) -> String {
        format!("mysql://root@127.0.0.1:{}/{name}", self.port)
    }

    /// SIGKILL: the server is gone at once; InnoDB recovers at the next start.
    pub fn kill_9(&mut self) {
        kill_and_reap(self.child.as_mut().expect("MariaDB is running"));
        self.child = None;
    }

    /// Starts the server again on the same data and port.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "stop MariaDB before restarting it");
        self.launch().await;
    }

    async fn launch(&mut self) {
        let mariadbd = ["/usr/sbin/mariadbd", "mariadbd"].into_iter().find(|p| Path::new(p).exists()).unwrap_or("mariadbd");
        let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
        let child = Command::new(mariadbd)
            .arg("--no-defaults")
            .arg(format!("--datadir={}", self.dir.join("data").display()))
            .arg(format!("--socket={}", self.dir.join("sock").display()))
            .arg(format!("--port={}", self.port))
            .args(["--bind-address=127.0.0.1", "--skip-log-bin", "--innodb-flush-log-at-trx-commit=2"])
            .args(["--innodb-buffer-pool-size=64M", "--max-connections=500", &format!("--user={user}")])
            .stdin(Stdio::null())
            .stdout(append_to(&self.log))
            .stderr(append_to(&self.log))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run mariadbd ({e}): apt-get install -y mariadb-server"));
        self.child = Some(child);
        let started = Instant::now();
        loop {
            let ready = Command::new("mariadb")
                .args(["--no-defaults", "-uroot", "-h127.0.0.1", &format!("-P{}", self.port), "-e", "SELECT 1"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("the private MariaDB exited ({status}):\n{}", log_of(&self.log));
            }
            assert!(started.elapsed() < START_PATIENCE, "the private MariaDB did not start in {START_PATIENCE:?}:\n{}", log_of(&self.log));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            kill_and_reap(child);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
