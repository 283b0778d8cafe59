//! Every deployable's image, built by `scripts/images.sh` from the debug binaries this
//! test run has, unpacked from its OCI archive and started from its own root
//! filesystem as its non-root user (nothing of the host's but the kernel and the
//! network), against the run's Redis, MariaDB and Kafka: each service answers
//! `/healthz` and `/readyz` on 0.0.0.0, and the operator prints its version.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use base64::{engine::general_purpose::STANDARD, Engine};
use goodsmall_images::Image;
use goodsmall_platform::auth::KeyPair;
use goodsmall_testkit::{free_port, unique_name};
use reqwest::StatusCode;

const SERVICES: [&str; 4] = ["goodsmall-user", "goodsmall-product", "goodsmall-order", "goodsmall-payment"];
const OPERATOR: &str = "goodsmall-operator";
/// The user every image runs as (images/Containerfile).
const USER: (u32, u32) = (65532, 65532);
const READY_PATIENCE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_image_runs_as_non_root_from_its_own_root_filesystem() {
    require_buildah();
    let started = Instant::now();
    let binaries = build_binaries();
    eprintln!("binaries up to date in {:.1?}", started.elapsed());
    let work = Work::new();

    let started = Instant::now();
    let out = work.0.join("out");
    let script = goodsmall_testkit::repo_root().join("scripts/images.sh");
    let status = Command::new(&script)
        .arg("--binaries")
        .arg(&binaries)
        .arg("--out")
        .arg(&out)
        .current_dir(goodsmall_testkit::repo_root())
        .status()
        .expect("bash runs");
    assert!(status.success(), "{} --binaries {} failed", script.display(), binaries.display());
    let built = started.elapsed();

    let mut images = Vec::new();
    for name in SERVICES.iter().chain([&OPERATOR]) {
        let image = Image::unpack(&out.join(format!("{name}.oci.tar")), &work.0.join(name))
            .unwrap_or_else(|e| panic!("{name}: {e:#}"));
        check_contents(name, &image);
        image.provide_runtime_files().unwrap();
        images.push(image);
    }
    let [user, product, order, payment, operator] = images.try_into().unwrap();
    eprintln!("images built in {built:.1?}, unpacked in {:.1?}", started.elapsed() - built);

    // The operator needs a cluster to run; its image must at least start its binary.
    let version = operator.command(&["--version"]).unwrap().output().expect("chroot runs");
    assert!(version.status.success(), "{OPERATOR} --version: {}", String::from_utf8_lossy(&version.stderr));
    assert_eq!(String::from_utf8_lossy(&version.stdout).trim(), format!("{OPERATOR} {}", env!("CARGO_PKG_VERSION")));

    let keys = KeyPair::generate();
    let kafka = [
        ("GOODSMALL_KAFKA__BROKERS".to_owned(), goodsmall_testkit::kafka_brokers().await),
        ("GOODSMALL_KAFKA__NAMESPACE".to_owned(), unique_name("images")),
    ];
    let common = |redis: String| {
        vec![
            ("GOODSMALL_REDIS__URL".to_owned(), redis),
            ("GOODSMALL_AUTH__PUBLIC_KEY_PEM".to_owned(), keys.public_pem.clone()),
        ]
    };
    let client = reqwest::Client::new();

    let mut env = common(goodsmall_testkit::redis_url().await);
    env.extend([
        ("GOODSMALL_AUTH__PRIVATE_KEY_PEM".to_owned(), keys.private_pem.clone()),
        ("GOODSMALL_USER__DATABASE__URL".to_owned(), goodsmall_testkit::mysql_url("img_user").await),
        ("GOODSMALL_USER__DATA_KEY".to_owned(), STANDARD.encode(rand::random::<[u8; 32]>())),
    ]);
    let mut user = Pod::start("goodsmall-user", &user, env, &work.0);

    let mut env = common(goodsmall_testkit::redis_url().await);
    env.extend(kafka.clone());
    env.push(("GOODSMALL_PRODUCT__DATABASE__URL".to_owned(), goodsmall_testkit::mysql_url("img_product").await));
    let mut product = Pod::start("goodsmall-product", &product, env, &work.0);

    let mut env = common(goodsmall_testkit::redis_url().await);
    env.extend(kafka.clone());
    env.push(("GOODSMALL_PAYMENT__DATABASE__URL".to_owned(), goodsmall_testkit::mysql_url("img_payment").await));
    let mut payment = Pod::start("goodsmall-payment", &payment, env, &work.0);

    // The order service checks sales' products at the product service's image.
    product.ready(&client).await;
    let mut env = common(goodsmall_testkit::redis_url().await);
    env.extend(kafka);
    env.push(("GOODSMALL_ORDER__DATABASE__URL".to_owned(), goodsmall_testkit::mysql_url("img_order").await));
    env.push(("GOODSMALL_ORDER__PRODUCT_API_URL".to_owned(), product.base()));
    let mut order = Pod::start("goodsmall-order", &order, env, &work.0);

    for pod in [&mut user, &mut payment, &mut order] {
        pod.ready(&client).await;
    }
    for pod in [&user, &product, &order, &payment] {
        pod.check_process();
    }
    eprintln!("images built, unpacked and serving in {:.1?}", started.elapsed());
}

/// Only the binary, the libraries it links, the CA bundle, the user's entries and
/// /tmp: no shell, nothing the user may change.
fn check_contents(name: &str, image: &Image) {
    assert_eq!((image.os.as_str(), image.layers), ("linux", 2), "{name}: one shared base layer, one binary layer");
    let (uid, gid) = image.user().unwrap();
    assert_eq!((uid, gid), USER, "{name} runs as the non-root user");
    // podman and skopeo read the short name; containerd (`ctr images import`) only the
    // full one, under which the kubelet asks for the chart's `goodsmall-…:<version>`.
    let version = env!("CARGO_PKG_VERSION");
    let names: Vec<(&str, &str)> = image.names.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(
        names,
        [
            ("io.containerd.image.name", format!("docker.io/library/{name}:{version}").as_str()),
            ("org.opencontainers.image.ref.name", format!("{name}:{version}").as_str())
        ],
        "{name}"
    );
    let passwd = fs::read_to_string(image.root.join("etc/passwd")).unwrap();
    assert!(passwd.lines().any(|l| l.starts_with(&format!("goodsmall:x:{uid}:{gid}:"))), "{name}: {passwd}");
    let binary = format!("/usr/local/bin/{name}");
    assert_eq!(image.config.entrypoint.as_deref(), Some(&[binary.clone()][..]), "{name}");
    let host = image.env().into_iter().find(|(k, _)| k == "GOODSMALL_HTTP__HOST").map(|(_, v)| v);
    if name == OPERATOR {
        assert_eq!(host, None, "the operator's own default is 0.0.0.0:8080");
    } else {
        assert_eq!(host.as_deref(), Some("0.0.0.0"), "{name} listens on the pod's address");
    }
    let ports = image.config.exposed_ports.clone().unwrap_or_default();
    assert_eq!(ports.keys().collect::<Vec<_>>(), ["8080/tcp"], "{name}");
    for path in image.files().unwrap() {
        let metadata = fs::symlink_metadata(image.root.join(&path)).unwrap();
        let file = path.rsplit('/').next().unwrap();
        let expected_file = path == binary.trim_start_matches('/')
            || ["etc/passwd", "etc/group", "etc/nsswitch.conf", "etc/ssl/certs/ca-certificates.crt"]
                .contains(&path.as_str())
            || (path.starts_with("lib") && file.contains(".so"));
        assert!(metadata.is_dir() || (metadata.is_file() && expected_file), "{name}: unexpected {path}");
        assert!(!["sh", "bash", "dash", "busybox"].contains(&file), "{name} has a shell: {path}");
        use std::os::unix::fs::MetadataExt;
        let sticky_tmp = path == "tmp" && metadata.mode() & 0o7777 == 0o1777;
        assert!(
            metadata.uid() == 0 && (metadata.mode() & 0o022 == 0 || sticky_tmp),
            "{name}: {path} is writable by the user ({:o})",
            metadata.mode()
        );
    }
    assert!(image.root.join("tmp").is_dir(), "{name} has /tmp");
}

/// One image's entrypoint running as a pod would: its root, its user, its environment
/// plus the pod's settings; the port it serves on chosen here.
struct Pod {
    name: &'static str,
    port: u16,
    child: Child,
    log: PathBuf,
}

impl Pod {
    fn start(name: &'static str, image: &Image, env: Vec<(String, String)>, logs: &Path) -> Pod {
        let port = free_port();
        let log = logs.join(format!("{name}.log"));
        let file = fs::File::create(&log).unwrap();
        let child = image
            .command(&[])
            .unwrap()
            .envs(env)
            .env("GOODSMALL_HTTP__PORT", port.to_string())
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Pod { name, port, child, log }
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until `/healthz` and `/readyz` both answer 200.
    async fn ready(&mut self, client: &reqwest::Client) {
        let started = Instant::now();
        loop {
            let mut answers = Vec::new();
            for path in ["/healthz", "/readyz"] {
                answers.push(
                    client
                        .get(format!("{}{path}", self.base()))
                        .timeout(Duration::from_secs(5))
                        .send()
                        .await
                        .map(|r| r.status())
                        .ok(),
                );
            }
            if answers.iter().all(|a| *a == Some(StatusCode::OK)) {
                return;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("{} exited ({status}):\n{}", self.name, self.log_text());
            }
            assert!(
                started.elapsed() < READY_PATIENCE,
                "{} not ready in {READY_PATIENCE:?} ({answers:?}):\n{}",
                self.name,
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The serving process is the image's user, rooted in the image, listening on
    /// 0.0.0.0 (the image's default, not the test's).
    fn check_process(&self) {
        let pid = self.child.id();
        let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let ids = |field: &str| {
            status
                .lines()
                .find(|l| l.starts_with(field))
                .unwrap()
                .split_whitespace()
                .skip(1)
                .map(|n| n.parse().unwrap())
                .collect::<Vec<u32>>()
        };
        assert_eq!(ids("Uid:"), [USER.0; 4], "{}: {status}", self.name);
        assert_eq!(ids("Gid:"), [USER.1; 4], "{}: {status}", self.name);
        assert!(ids("Groups:").iter().all(|g| *g == USER.1), "{}: no other groups: {status}", self.name);
        let exe = fs::read_link(format!("/proc/{pid}/exe")).unwrap();
        let root = fs::read_link(format!("/proc/{pid}/root")).unwrap();
        assert!(
            exe.starts_with(&root) && exe.ends_with(format!("usr/local/bin/{}", self.name)),
            "{}: {} in {}",
            self.name,
            exe.display(),
            root.display()
        );
        let listening = fs::read_to_string("/proc/net/tcp").unwrap();
        let wanted = format!("00000000:{:04X}", self.port);
        let row = listening.lines().find(|l| {
            l.split_whitespace().nth(1) == Some(wanted.as_str()) && l.split_whitespace().nth(3) == Some("0A")
        });
        assert!(row.is_some(), "{} does not listen on 0.0.0.0:{}:\n{listening}", self.name, self.port);
    }
}

impl Drop for Pod {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The test's folder (images, unpacked roots, logs), kept when the test fails.
struct Work(PathBuf);

impl Work {
    fn new() -> Work {
        let dir = std::env::temp_dir().join(unique_name("goodsmall-images"));
        fs::create_dir_all(&dir).unwrap();
        Work(dir)
    }
}

impl Drop for Work {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept {} (archives, unpacked roots, logs)", self.0.display());
        } else {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

fn require_buildah() {
    let found = Command::new("buildah")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(found, "buildah is not installed: apt-get install -y buildah (scripts/test.sh installs it)");
}

/// The binaries of this build profile (target/debug in a test run), brought up to date.
fn build_binaries() -> PathBuf {
    let binaries: Vec<(&str, &str)> = SERVICES.iter().chain([&OPERATOR]).map(|name| (*name, *name)).collect();
    goodsmall_testkit::build_binaries(&binaries)
}
