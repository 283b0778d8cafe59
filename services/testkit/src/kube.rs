//! A real Kubernetes control plane for the operator's tests, envtest style: etcd and
//! kube-apiserver (built by `scripts/envtest.sh`) on free loopback ports, with a serving
//! certificate, a service-account signing key and an admin token generated in a temp
//! folder, RBAC authorization, and a kubeconfig for `kubectl` and kube-rs. No kubelet
//! and no controller-manager: objects are stored and validated, nothing runs them.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use crate::{free_port, unique_name};

const START_PATIENCE: Duration = Duration::from_secs(120);
const FIX: &str = "run `scripts/envtest.sh build` (or the whole suite with `scripts/test.sh`, which builds it)";

/// The folder with `etcd`, `kube-apiserver` and `kubectl`.
fn binaries() -> PathBuf {
    if let Ok(dir) = std::env::var("TESTKIT_ENVTEST_BIN") {
        return PathBuf::from(dir);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/envtest.sh");
    let out =
        Command::new(&script).arg("path").output().unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "etcd and kube-apiserver are not built: {FIX}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run openssl ({e}): apt-get install -y openssl"));
    assert!(out.status.success(), "openssl {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// etcd plus kube-apiserver, stopped (and their folder removed) on drop.
pub struct ControlPlane {
    dir: PathBuf,
    bin: PathBuf,
    etcd: Child,
    apiserver: Child,
    /// `https://127.0.0.1:<port>`.
    pub server: String,
    /// A kubeconfig with cluster-admin rights (user `admin`, group `system:masters`).
    pub kubeconfig: PathBuf,
}

impl ControlPlane {
    pub async fn start() -> ControlPlane {
        let bin = binaries();
        for tool in ["etcd", "kube-apiserver", "kubectl"] {
            assert!(bin.join(tool).exists(), "{} is missing: {FIX}", bin.join(tool).display());
        }
        let dir = std::env::temp_dir().join(unique_name("kube"));
        std::fs::create_dir_all(&dir).unwrap();
        // A CA, a serving certificate for 127.0.0.1 signed by it, a service-account key.
        openssl(
            &dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=goodsmall-test-ca",
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
            ],
        );
        openssl(
            &dir,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-subj",
                "/CN=kube-apiserver",
                "-keyout",
                "serving.key",
                "-out",
                "serving.csr",
            ],
        );
        std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
            .unwrap();
        openssl(
            &dir,
            &[
                "x509",
                "-req",
                "-in",
                "serving.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                "san.ext",
                "-out",
                "serving.crt",
            ],
        );
        openssl(&dir, &["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "sa.key"]);
        openssl(&dir, &["pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub"]);
        let admin_token = unique_name("admin");
        std::fs::write(dir.join("tokens.csv"), format!("{admin_token},admin,admin,system:masters\n")).unwrap();

        let log = |name: &str| std::fs::OpenOptions::new().create(true).append(true).open(dir.join(name)).unwrap();
        let (client_port, peer_port, secure_port) = (free_port(), free_port(), free_port());
        let etcd_url = format!("http://127.0.0.1:{client_port}");
        let etcd = Command::new(bin.join("etcd"))
            .arg(format!("--data-dir={}", dir.join("etcd").display()))
            .arg(format!("--listen-client-urls={etcd_url}"))
            .arg(format!("--advertise-client-urls={etcd_url}"))
            .arg(format!("--listen-peer-urls=http://127.0.0.1:{peer_port}"))
            .arg(format!("--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}"))
            .arg(format!("--initial-cluster=default=http://127.0.0.1:{peer_port}"))
            // A test store: losing it on a power cut is fine, waiting for fsync is not.
            .args(["--unsafe-no-fsync", "--log-level=warn"])
            .stdin(Stdio::null())
            .stdout(log("etcd.log"))
            .stderr(log("etcd.log"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start etcd ({e}): {FIX}"));
        let path = |file: &str| dir.join(file).display().to_string();
        let apiserver = Command::new(bin.join("kube-apiserver"))
            .arg(format!("--etcd-servers={etcd_url}"))
            .arg(format!("--secure-port={secure_port}"))
            .args(["--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", "--endpoint-reconciler-type=none"])
            .arg(format!("--cert-dir={}", path("certs")))
            .arg(format!("--tls-cert-file={}", path("serving.crt")))
            .arg(format!("--tls-private-key-file={}", path("serving.key")))
            .arg(format!("--client-ca-file={}", path("ca.crt")))
            .arg(format!("--token-auth-file={}", path("tokens.csv")))
            .args(["--authorization-mode=RBAC", "--anonymous-auth=false"])
            .arg("--service-account-issuer=https://kubernetes.default.svc.cluster.local")
            .arg(format!("--service-account-key-file={}", path("sa.pub")))
            .arg(format!("--service-account-signing-key-file={}", path("sa.key")))
            .args(["--service-cluster-ip-range=10.96.0.0/16", "--allow-privileged=true"])
            // No controller-manager signs or cleans up after these; tests do not need them.
            .arg("--disable-admission-plugins=ServiceAccount")
            .args(["--enable-priority-and-fairness=false", "--v=1"])
            .stdin(Stdio::null())
            .stdout(log("kube-apiserver.log"))
            .stderr(log("kube-apiserver.log"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start kube-apiserver ({e}): {FIX}"));
        let server = format!("https://127.0.0.1:{secure_port}");
        let kubeconfig = dir.join("kubeconfig");
        std::fs::write(&kubeconfig, kubeconfig_yaml(&server, &dir.join("ca.crt"), "admin", &admin_token)).unwrap();
        let mut plane = ControlPlane { dir, bin, etcd, apiserver, server, kubeconfig };
        plane.wait_ready().await;
        plane
    }

    async fn wait_ready(&mut self) {
        let started = Instant::now();
        loop {
            let ready = self.kubectl(&["get", "--raw", "/readyz"]);
            if ready.status.success() && String::from_utf8_lossy(&ready.stdout).trim() == "ok" {
                return;
            }
            let exited =
                [("etcd", self.etcd.try_wait().unwrap()), ("kube-apiserver", self.apiserver.try_wait().unwrap())];
            if let Some((name, Some(status))) = exited.iter().find(|(_, status)| status.is_some()) {
                panic!("{name} exited ({status}):\n{}", self.log(&format!("{name}.log")));
            }
            assert!(
                started.elapsed() < START_PATIENCE,
                "kube-apiserver not ready in {START_PATIENCE:?}: {}\n{}",
                String::from_utf8_lossy(&ready.stderr),
                self.log("kube-apiserver.log")
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub fn log(&self, name: &str) -> String {
        let text = std::fs::read_to_string(self.dir.join(name)).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(60).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    /// The `kubectl` binary (for callers that run it themselves, e.g. from a thread).
    pub fn kubectl_path(&self) -> PathBuf {
        self.bin.join("kubectl")
    }

    /// KEDA's ScaledObject CRD (from KEDA's Go module, beside the binaries).
    pub fn keda_crd(&self) -> PathBuf {
        self.bin.join("keda.sh_scaledobjects.yaml")
    }

    /// `kubectl` as cluster admin.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_as(&self.kubeconfig, args, None)
    }

    /// `kubectl` with another kubeconfig, `stdin` fed to it when given.
    pub fn kubectl_as(&self, kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> Output {
        use std::io::Write as _;
        let mut child = Command::new(self.bin.join("kubectl"))
            .arg(format!("--kubeconfig={}", kubeconfig.display()))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl runs");
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).unwrap();
        }
        drop(input);
        child.wait_with_output().unwrap()
    }

    /// `kubectl` as admin that must succeed; its stdout.
    pub fn kubectl_ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.kubectl_as(&self.kubeconfig, args, stdin);
        assert!(out.status.success(), "kubectl {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A kubeconfig authenticating as service account `namespace/name` with a fresh
    /// token from the TokenRequest API (the account must exist).
    pub fn service_account_kubeconfig(&self, namespace: &str, name: &str) -> PathBuf {
        let token = self.kubectl_ok(&["create", "token", name, "-n", namespace, "--duration=2h"], None);
        let path = self.dir.join(format!("kubeconfig-{namespace}-{name}"));
        let user = format!("system:serviceaccount:{namespace}:{name}");
        std::fs::write(&path, kubeconfig_yaml(&self.server, &self.dir.join("ca.crt"), &user, token.trim())).unwrap();
        path
    }
}

fn kubeconfig_yaml(server: &str, ca: &Path, user: &str, token: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {server}\n    \
         certificate-authority: {}\n\
         users:\n- name: \"{user}\"\n  user:\n    token: {token}\n\
         contexts:\n- name: test\n  context:\n    cluster: test\n    user: \"{user}\"\n\
         current-context: test\n",
        ca.display()
    )
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        for child in [&mut self.apiserver, &mut self.etcd] {
            let _ = child.kill();
            let _ = child.wait();
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
