//! The real one-node Kubernetes cluster of `scripts/cluster.sh` (kubelet, containerd,
//! kube-proxy, CoreDNS, metrics-server): where the chart's pods actually run. The
//! cluster is started once per test run (`scripts/test.sh` brings it up); the tests
//! install releases into namespaces of their own. The images are the deployables'
//! own, built by `scripts/images.sh` from this test profile's binaries and imported
//! into the node's containerd with the ordinary `ctr images import`.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use crate::{build_binaries, repo_root};

const FIX: &str = "start it with `scripts/cluster.sh up` (`scripts/test.sh` builds and starts it; `scripts/cluster.sh \
    status` says what is wrong)";

/// The deployables whose images the chart runs.
pub const IMAGES: [&str; 5] =
    ["goodsmall-user", "goodsmall-product", "goodsmall-order", "goodsmall-payment", "goodsmall-operator"];

/// A handle on the running cluster.
pub struct Node {
    /// Admin kubeconfig.
    pub kubeconfig: PathBuf,
    /// The folder with `kubectl`, `helm` and `ctr`.
    pub bin: PathBuf,
    /// The node's address: pods reach the host's servers there (scripts/test.sh starts
    /// Redis, MariaDB and Kafka on it).
    pub address: String,
    /// Everything `scripts/cluster.sh env` exports (e.g. containerd's socket for `ctr`),
    /// given to every tool run.
    env: HashMap<String, String>,
}

impl Node {
    /// The running cluster, or a failure that names the fix (never a skip).
    pub fn get() -> Node {
        let script = repo_root().join("scripts/cluster.sh");
        let out = Command::new(&script)
            .arg("env")
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        assert!(out.status.success(), "the test cluster is not up: {FIX}\n{}", String::from_utf8_lossy(&out.stderr));
        let env = parse_exports(&String::from_utf8_lossy(&out.stdout));
        let get = |key: &str| {
            env.get(key).cloned().unwrap_or_else(|| panic!("`scripts/cluster.sh env` does not set {key}: {env:?}"))
        };
        let (kubeconfig, bin, address) =
            (get("KUBECONFIG").into(), get("GOODSMALL_CLUSTER_BIN").into(), get("GOODSMALL_NODE_IP"));
        let node = Node { kubeconfig, bin, address, env };
        let ready = node.kubectl(
            &["get", "nodes", "-o", "jsonpath={.items[*].status.conditions[?(@.type==\"Ready\")].status}"],
            None,
        );
        assert!(
            ready.status.success() && String::from_utf8_lossy(&ready.stdout).trim() == "True",
            "the test cluster's node is not Ready: {FIX}\n{}{}",
            String::from_utf8_lossy(&ready.stdout),
            String::from_utf8_lossy(&ready.stderr)
        );
        node
    }

    fn tool(&self, name: &str) -> Command {
        let mut command = Command::new(self.bin.join(name));
        command.envs(&self.env).current_dir(repo_root());
        command
    }

    /// `kubectl args`, with `stdin` piped in when given.
    pub fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> Output {
        run(self.tool("kubectl").args(args), stdin)
    }

    /// `kubectl args`, which must succeed: its standard output.
    pub fn kubectl_ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.kubectl(args, stdin);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `helm args`.
    pub fn helm(&self, args: &[&str]) -> Output {
        run(self.tool("helm").args(args), None)
    }

    /// A server URL on this host as pods reach it: loopback becomes the node address.
    pub fn reachable(&self, url: &str) -> String {
        url.replace("127.0.0.1", &self.address).replace("localhost", &self.address)
    }

    /// Builds the five images from this test profile's binaries (`scripts/images.sh
    /// --binaries`) and imports them into the node's containerd with a plain
    /// `ctr images import` (`scripts/cluster.sh import`); returns their tag. Each must
    /// then be listed under the name the chart asks the kubelet for.
    pub fn import_images(&self) -> String {
        let started = Instant::now();
        let binaries = build_binaries(&IMAGES.map(|image| (image, image)));
        let out = repo_root().join("target/node-images");
        let tag = env!("CARGO_PKG_VERSION").to_owned();
        // The same binaries as the last import, still in containerd: nothing to do.
        let stamp = IMAGES
            .iter()
            .map(|image| {
                let meta = std::fs::metadata(binaries.join(image)).expect("a built binary");
                format!("{image} {} {:?}\n", meta.len(), meta.modified().ok())
            })
            .collect::<String>();
        let stamp_file = out.join("imported.stamp");
        if std::fs::read_to_string(&stamp_file).is_ok_and(|s| s == stamp) && self.missing_images(&tag).is_empty() {
            return tag;
        }
        let status = Command::new(repo_root().join("scripts/images.sh"))
            .arg("--binaries")
            .arg(&binaries)
            .arg("--out")
            .arg(&out)
            .current_dir(repo_root())
            .status()
            .expect("bash runs");
        assert!(status.success(), "scripts/images.sh --binaries {} failed", binaries.display());
        self.import_archives(&out, &tag);
        std::fs::write(&stamp_file, stamp).unwrap();
        eprintln!("images built and imported in {:.1?}", started.elapsed());
        tag
    }

    /// Imports the five `<image>.oci.tar` archives of `dir` into the node's containerd
    /// (`scripts/cluster.sh import`, a plain `ctr images import`) and checks that each is
    /// listed as `docker.io/library/<image>:<tag>`.
    pub fn import_archives(&self, dir: &Path, tag: &str) {
        let archives: Vec<String> =
            IMAGES.iter().map(|image| dir.join(format!("{image}.oci.tar")).display().to_string()).collect();
        let mut import = Command::new(repo_root().join("scripts/cluster.sh"));
        import.arg("import").args(&archives);
        let imported = run(&mut import, None);
        assert!(
            imported.status.success(),
            "importing the images failed: {}",
            String::from_utf8_lossy(&imported.stderr)
        );
        let missing = self.missing_images(tag);
        assert!(missing.is_empty(), "not in the node's containerd after the import: {missing:?}");
    }

    /// The images (by the name the kubelet asks for) the node's containerd lacks.
    fn missing_images(&self, tag: &str) -> Vec<String> {
        let listed = run(self.tool("ctr").args(["-n", "k8s.io", "images", "ls", "-q"]), None);
        let listed = String::from_utf8_lossy(&listed.stdout);
        IMAGES
            .iter()
            .map(|image| format!("docker.io/library/{image}:{tag}"))
            .filter(|name| !listed.lines().any(|l| l.trim() == name))
            .collect()
    }

    /// Polls `check` every 200 ms until it returns `Some`, for at most `patience`;
    /// then fails with `what` and `diagnose()`'s output (pods, events, logs).
    pub fn wait_for<T>(
        &self,
        what: &str,
        patience: Duration,
        mut check: impl FnMut() -> Option<T>,
        diagnose: impl Fn() -> String,
    ) -> T {
        let started = Instant::now();
        loop {
            if let Some(value) = check() {
                return value;
            }
            assert!(started.elapsed() < patience, "{what}: not within {patience:?}\n{}", diagnose());
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// What a failing test shows about a namespace: its pods, recent events and the
    /// last log lines of every container.
    pub fn diagnose(&self, namespace: &str) -> String {
        let mut report = String::new();
        for args in [
            vec!["get", "pods,deploy,rs,hpa,fs", "-n", namespace, "-o", "wide"],
            vec!["get", "events", "-n", namespace, "--sort-by=.lastTimestamp"],
        ] {
            let out = self.kubectl(&args, None);
            report.push_str(&format!(
                "$ kubectl {}\n{}{}\n",
                args.join(" "),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let pods = self.kubectl(&["get", "pods", "-n", namespace, "-o", "name"], None);
        for pod in String::from_utf8_lossy(&pods.stdout).lines() {
            let out = self.kubectl(&["logs", "-n", namespace, pod, "--all-containers", "--tail=15"], None);
            report.push_str(&format!(
                "--- {pod}\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        report
    }
}

fn run(command: &mut Command, stdin: Option<&str>) -> Output {
    use std::io::Write;
    command
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let program = command.get_program().to_owned();
    let mut child =
        command.spawn().unwrap_or_else(|e| panic!("cannot run {}: {e}; {FIX}", Path::new(&program).display()));
    if let Some(input) = stdin {
        child.stdin.take().expect("piped").write_all(input.as_bytes()).expect("writing stdin");
    }
    child.wait_with_output().expect("waiting for the command")
}

/// `export KEY=VALUE` / `KEY=VALUE` lines (values optionally quoted) as a map.
fn parse_exports(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|line| line.trim().trim_start_matches("export ").split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().trim_matches(|c| c == '"' || c == '\'').to_owned()))
        .collect()
}

#[test]
fn exports_are_read_with_or_without_export_and_quotes() {
    let env = parse_exports(
        "export KUBECONFIG=/tmp/c/kubeconfig\nGOODSMALL_NODE_IP='10.88.0.1'\nexport GOODSMALL_CLUSTER_BIN=\"/x y\"\n",
    );
    assert_eq!(env["KUBECONFIG"], "/tmp/c/kubeconfig");
    assert_eq!(env["GOODSMALL_NODE_IP"], "10.88.0.1");
    assert_eq!(env["GOODSMALL_CLUSTER_BIN"], "/x y");
}
