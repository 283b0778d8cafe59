//! One release of the chart on the node, in a namespace of its own, on this test run's
//! MariaDB, Redis and Kafka (on the node's address, so pods reach them), with keys
//! generated here, installed by the real helm v4 binary with `--wait`: every
//! Deployment Available through its real probes. The shop's API is reached the way
//! the Ingress routes it, at each Service's ClusterIP through kube-proxy's rules.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::Mutex,
    time::{Duration, Instant},
};

use goodsmall_platform::auth::{KeyPair, KeySettings, Role, TokenSigner};
use goodsmall_testkit::{unique_name, Node};
use serde_json::{json, Value};

/// Longest a `helm install/upgrade --wait` or a rollout may take on 2 busy cores.
pub const INSTALL_PATIENCE: Duration = Duration::from_secs(300);

pub struct Release {
    pub node: Node,
    pub namespace: String,
    pub name: String,
    /// The chart helm installs and upgrades to: this checkout's (`helm/goodsmall`)
    /// unless the test installed an earlier release's.
    pub chart: String,
    values: PathBuf,
    /// Helm arguments given at the install, given again to every later helm call.
    values_extra: Vec<String>,
    token_keys: KeyPair,
    pub client: reqwest::Client,
    /// How long `helm install --wait` took.
    pub installed_in: Duration,
    /// Each component's Service URL, looked up once per helm call: a `kubectl get svc`
    /// per request (a process and an API call, run on the test's runtime threads) made
    /// a round of 300 polls take half a minute.
    services: Mutex<HashMap<String, String>>,
}

impl Release {
    /// Installs the chart into a new namespace; `extra` are more helm arguments (`-f
    /// values-dev.yaml`, `--set …`), kept for every later helm call. Fails with the
    /// namespace's pods, events and logs.
    pub async fn install(prefix: &str, extra: &[&str]) -> Release {
        Release::install_chart(prefix, "helm/goodsmall", &[], extra).await
    }

    /// The same with another chart (an earlier release's); `install_only` are helm
    /// arguments for the install alone (that release's image tag).
    pub async fn install_chart(prefix: &str, chart: &str, install_only: &[&str], extra: &[&str]) -> Release {
        let node = Node::get();
        remove_leftovers(&node);
        node.import_images();
        let namespace = unique_name(prefix).to_lowercase();
        let namespace = namespace[..namespace.len().min(55)].trim_end_matches('-').to_owned();
        let dir = std::env::temp_dir().join(&namespace);
        std::fs::create_dir_all(&dir).unwrap();
        let values = dir.join("values.yaml");
        let token_keys = KeyPair::generate();
        std::fs::write(&values, values_yaml(&node, &namespace, &token_keys).await).unwrap();
        let mut release = Release {
            node,
            name: "goodsmall".into(),
            chart: chart.to_owned(),
            namespace,
            values,
            values_extra: extra.iter().map(|a| a.to_string()).collect(),
            token_keys,
            client: reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap(),
            installed_in: Duration::ZERO,
            services: Mutex::default(),
        };
        let started = Instant::now();
        release.helm_ok(&["install", "--create-namespace"], install_only);
        release.installed_in = started.elapsed();
        release
    }

    /// A release with its Services answering and a product of a merchant made as
    /// README step 4 says: the release and the product's id.
    pub async fn with_product(prefix: &str, extra: &[&str]) -> (Release, i64) {
        Release::product_on(Release::install(prefix, extra).await).await
    }

    /// A product made on an installed release, as [`Release::with_product`] does.
    pub async fn product_on(release: Release) -> (Release, i64) {
        release.services_answer().await;
        let merchant = release.merchant().await;
        let product = release.product(&merchant).await;
        (release, product)
    }

    /// `helm <verb> goodsmall <chart> -n NS -f values --wait …extra`: must succeed.
    pub fn helm_ok(&self, verb: &[&str], extra: &[&str]) {
        self.helm_ok_with_chart(&self.chart, verb, extra)
    }

    /// The same with another chart (an upgrade to this checkout's).
    pub fn helm_ok_with_chart(&self, chart: &str, verb: &[&str], extra: &[&str]) {
        let values = self.values.display().to_string();
        let timeout = format!("{}s", INSTALL_PATIENCE.as_secs());
        let mut args: Vec<&str> = verb.to_vec();
        args.extend([self.name.as_str(), chart, "-n", &self.namespace, "-f", &values, "--wait", "--timeout", &timeout]);
        args.extend(self.values_extra.iter().map(String::as_str));
        args.extend_from_slice(extra);
        let out = self.node.helm(&args);
        // A reinstall makes new Services (new ClusterIPs).
        self.services.lock().unwrap().clear();
        assert!(
            out.status.success(),
            "helm {args:?} failed: {}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.diagnose()
        );
    }

    pub fn diagnose(&self) -> String {
        self.node.diagnose(&self.namespace)
    }

    pub fn kubectl_ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let mut all = vec!["-n", self.namespace.as_str()];
        all.extend_from_slice(args);
        self.node.kubectl_ok(&all, stdin)
    }

    pub fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> std::process::Output {
        let mut all = vec!["-n", self.namespace.as_str()];
        all.extend_from_slice(args);
        self.node.kubectl(&all, stdin)
    }

    /// `kubectl get … -o json` of one object.
    pub fn get(&self, object: &str) -> Value {
        serde_json::from_str(&self.kubectl_ok(&["get", object, "-o", "json"], None)).unwrap()
    }

    /// Polls `check` until it gives `Some` (at most `patience`), else fails with the
    /// namespace's state.
    pub fn wait_for<T>(&self, what: &str, patience: Duration, check: impl FnMut() -> Option<T>) -> T {
        self.node.wait_for(what, patience, check, || self.diagnose())
    }

    /// The component's Service, as the Ingress reaches it: `http://<ClusterIP>:8080`.
    pub fn service(&self, component: &str) -> String {
        if let Some(url) = self.services.lock().unwrap().get(component) {
            return url.clone();
        }
        let ip = self
            .kubectl_ok(&["get", "svc", &format!("goodsmall-{component}"), "-o", "jsonpath={.spec.clusterIP}"], None);
        let url = format!("http://{}:8080", ip.trim());
        self.services.lock().unwrap().insert(component.to_owned(), url.clone());
        url
    }

    /// Base URL for an API path, routed as the chart's route table does.
    pub fn api(&self, path: &str) -> String {
        let component = match path.trim_start_matches("/api/").split('/').next().unwrap_or_default() {
            "auth" | "users" | "dev" => "user",
            "products" | "cart" => "product",
            "sales" | "orders" => "order",
            "payments" => "payment",
            other => panic!("no route for /api/{other}"),
        };
        format!("{}{path}", self.service(component))
    }

    /// Waits until every Service answers `/readyz` from this host: an endpoint that
    /// turned Ready reaches kube-proxy's rules a moment later.
    pub async fn services_answer(&self) {
        for component in ["user", "product", "order", "payment"] {
            let url = format!("{}/readyz", self.service(component));
            let started = Instant::now();
            loop {
                match self.client.get(&url).send().await {
                    Ok(answer) if answer.status().is_success() => break,
                    other if started.elapsed() > Duration::from_secs(30) => {
                        panic!("{url}: {other:?}\n{}", self.diagnose())
                    }
                    _ => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        }
    }

    /// An access token for a shopper `user_id`, signed with the release's token key.
    pub fn shopper_token(&self, user_id: i64) -> String {
        let signer =
            TokenSigner::new(&self.token_keys.private_pem, KeySettings::default().issuer(), Duration::from_secs(3600))
                .unwrap();
        signer.issue(user_id, Role::Shopper, &format!("pods-{user_id}")).unwrap()
    }

    /// A merchant made as README step 4 says (`kubectl exec -i … create-account
    /// --password-stdin`, the password on stdin only), logged in through the user
    /// Service: the access token.
    pub async fn merchant(&self) -> String {
        let email = format!("{}@example.com", unique_name("merchant"));
        let password = "m3rchant-Pass-9";
        let created = self.kubectl_ok(
            &[
                "exec",
                "-i",
                "deploy/goodsmall-user",
                "--",
                "/usr/local/bin/goodsmall-user",
                "create-account",
                "--email",
                &email,
                "--name",
                "Shop",
                "--role",
                "merchant",
                "--password-stdin",
            ],
            Some(&format!("{password}\n")),
        );
        assert!(created.contains("created merchant account"), "{created}");
        let (status, body) =
            self.post("/api/auth/login", None, json!({ "email": email, "password": password }), None).await;
        assert_eq!(status, 200, "{body}");
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// A product of the merchant's, on sale: its id.
    pub async fn product(&self, merchant: &str) -> i64 {
        let body = json!({ "name": "Lightstick", "description": "limited", "price": "59.00", "quantity": 10_000,
            "status": "ON_SALE" });
        let (status, product) = self.post("/api/products", Some(merchant), body, None).await;
        assert_eq!(status, 201, "{product}");
        product["id"].as_i64().unwrap()
    }

    /// POST with a JSON body: status and JSON answer (Null when it is not JSON).
    pub async fn post(&self, path: &str, token: Option<&str>, body: Value, key: Option<&str>) -> (u16, Value) {
        let mut request = self.client.post(self.api(path)).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        let answer = request.send().await.unwrap_or_else(|e| panic!("POST {path}: {e}\n{}", self.diagnose()));
        let status = answer.status().as_u16();
        (status, answer.json().await.unwrap_or(Value::Null))
    }

    /// A GET as a well-behaved client sends it: a connection refused or reset (a pod
    /// just deleted, still in kube-proxy's rules for a moment) is retried for 30 s.
    pub async fn get_api(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let url = self.api(path);
        let started = Instant::now();
        let answer = loop {
            let mut request = self.client.get(&url);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            match request.send().await {
                Ok(answer) => break answer,
                Err(e) if started.elapsed() > Duration::from_secs(30) => {
                    panic!("GET {path}: {e}\n{}", self.diagnose())
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        };
        let status = answer.status().as_u16();
        (status, answer.json().await.unwrap_or(Value::Null))
    }

    /// Ready replicas of a Deployment (0 when the field is absent, as the API omits it).
    pub fn ready_replicas(&self, deployment: &str) -> i64 {
        self.get(&format!("deploy/{deployment}"))["status"]["readyReplicas"].as_i64().unwrap_or(0)
    }

    /// The FlashSale object.
    pub fn flash_sale(&self, name: &str) -> Value {
        self.get(&format!("fs/{name}"))
    }

    /// Waits (at most `patience`) for the FlashSale to satisfy `done`: the object.
    pub fn flash_sale_until(&self, name: &str, what: &str, patience: Duration, done: impl Fn(&Value) -> bool) -> Value {
        self.wait_for(&format!("FlashSale {name}: {what}"), patience, || {
            Some(self.flash_sale(name)).filter(|fs| done(fs))
        })
    }

    /// A FlashSale of `stock` units opening `opens_in` from now for `open_for`,
    /// warming up `lead` ahead with `replicas` order and payment pods (None: no scaling).
    /// Each argument is one line of the manifest; the tests read as the drop they make.
    #[allow(clippy::too_many_arguments)]
    pub fn flash_sale_manifest(
        &self,
        name: &str,
        product: i64,
        stock: i64,
        opens_in: Duration,
        open_for: Duration,
        lead: &str,
        replicas: Option<i64>,
    ) -> String {
        let at = |d: Duration| {
            (chrono::Utc::now() + chrono::Duration::from_std(d).unwrap())
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        };
        let scaling =
            replicas.map(|n| format!("    orderReplicas: {n}\n    paymentReplicas: {n}\n")).unwrap_or_default();
        format!(
            "apiVersion: goodsmall.io/v1alpha1\nkind: FlashSale\nmetadata:\n  name: {name}\nspec:\n  \
             productId: {product}\n  stock: {stock}\n  price: \"49.00\"\n  opensAt: {}\n  closesAt: {}\n  \
             perUserLimit: 1\n  warmup:\n    lead: {lead}\n{scaling}",
            at(opens_in),
            at(opens_in + open_for)
        )
    }
}

/// Releases a failed test left behind (a panic can keep its `Release` alive in a task
/// that never ends): the chart is one per cluster, so each would stop the next install.
fn remove_leftovers(node: &Node) {
    let listed = node.helm(&["list", "-A", "-o", "json"]);
    let releases: Vec<Value> = serde_json::from_slice(&listed.stdout).unwrap_or_default();
    for namespace in releases.iter().filter_map(|r| r["namespace"].as_str()).filter(|ns| ns.starts_with("pods-")) {
        eprintln!("removing the release a failed test left in {namespace}");
        remove(node, namespace, "goodsmall", Duration::from_secs(5));
    }
}

/// Its FlashSales first, while the operator still runs their cleanup (given `patience`,
/// then let go of), then the release, then the namespace.
fn remove(node: &Node, namespace: &str, name: &str, patience: Duration) {
    let timeout = format!("--timeout={}s", patience.as_secs());
    let deleted = node.kubectl(&["-n", namespace, "delete", "fs", "--all", &timeout], None);
    if !deleted.status.success() {
        // The cleanup could not finish (e.g. reservations still open): let go of them.
        let names = node.kubectl(&["-n", namespace, "get", "fs", "-o", "name"], None);
        for fs in String::from_utf8_lossy(&names.stdout).lines() {
            let _ = node.kubectl(
                &["-n", namespace, "patch", fs, "--type=merge", "-p", r#"{"metadata":{"finalizers":null}}"#],
                None,
            );
        }
    }
    let _ = node.helm(&["uninstall", name, "-n", namespace, "--wait", "--timeout", "120s"]);
    let _ = node.kubectl(&["delete", "namespace", namespace, "--wait=false"], None);
}

impl Drop for Release {
    /// Removes the release whatever happened (the operator watches FlashSales in every
    /// namespace and its ClusterRole is named after the release, so one left behind
    /// would break the next test): its FlashSales first, while the operator still runs
    /// their cleanup, then the release, then the namespace. A failing assertion has
    /// printed the namespace's state already.
    fn drop(&mut self) {
        remove(&self.node, &self.namespace, &self.name, Duration::from_secs(90));
    }
}

/// The release's values: images as imported (no registry, never pulled), this run's
/// servers at the node's address, inline keys, one replica of what need not be more,
/// small CPU requests (two cores carry every pod), and a PSP that accepts every
/// payment so that a drop's outcome is exact.
async fn values_yaml(node: &Node, namespace: &str, token_keys: &KeyPair) -> String {
    let redis = node.reachable(&goodsmall_testkit::redis_url().await);
    let kafka = node.reachable(&goodsmall_testkit::kafka_brokers().await);
    let mut mysql = Vec::new();
    for service in ["user", "product", "order", "payment"] {
        mysql.push((service, node.reachable(&goodsmall_testkit::mysql_url(&format!("pods_{service}")).await)));
    }
    let internal = KeyPair::generate();
    let data_key = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>())
    };
    let port =
        |url: &str| reqwest::Url::parse(url).ok().and_then(|u| u.port()).unwrap_or_else(|| panic!("no port in {url}"));
    let indent = |pem: &str| pem.trim().lines().map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n");
    let small = "resources: { requests: { cpu: 20m, memory: 64Mi }, limits: { cpu: \"1\", memory: 512Mi } }";
    format!(
        r#"global:
  image: {{ registry: "", pullPolicy: Never }}
mysql:
  existingSecret: ""
  createIfMissing: true
  urls: {{ user: "{user}", product: "{product}", order: "{order}", payment: "{payment}" }}
redis: {{ existingSecret: "", url: "{redis}" }}
kafka: {{ brokers: "{kafka}", namespace: "{namespace}", sessionTimeoutMs: 6000 }}
tokenKeys:
  existingSecret: ""
  privateKeyPem: |
{token_private}
  publicKeyPem: |
{token_public}
internalKeys:
  existingSecret: ""
  privateKeyPem: |
{internal_private}
  publicKeyPem: |
{internal_public}
networkPolicy:
  entryPoint: []
  prometheus: []
  egress:
    mysql: {{ ports: [{{ port: {mysql_port} }}] }}
    redis: {{ ports: [{{ port: {redis_port} }}] }}
    kafka: {{ ports: [{{ port: {kafka_port} }}] }}
user:
  replicaCount: 1
  existingSecret: ""
  dataKey: "{data_key}"
  mailTransport: dev-mailbox
  passwordHashing: {{ memoryKib: 8192, iterations: 1 }}
  {small}
product:
  replicaCount: 1
  {small}
order:
  autoscaling: {{ minReplicas: 1, maxReplicas: 3 }}
  {small}
payment:
  autoscaling: {{ minReplicas: 1, maxReplicas: 3 }}
  simulatedPsp: {{ failureRate: 0, latencyMillis: 5 }}
  {small}
operator:
  replicaCount: 2
  leaseDurationSecs: 6
  refreshSecs: 2
  {small}
"#,
        user = mysql[0].1,
        product = mysql[1].1,
        order = mysql[2].1,
        payment = mysql[3].1,
        mysql_port = port(&mysql[0].1),
        redis_port = port(&redis),
        kafka_port = port(&format!("kafka://{}", kafka.split(',').next().unwrap())),
        token_private = indent(&token_keys.private_pem),
        token_public = indent(&token_keys.public_pem),
        internal_private = indent(&internal.private_pem),
        internal_public = indent(&internal.public_pem),
    )
}
