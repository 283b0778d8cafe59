//! A shop on a real API server: the control plane with the FlashSale CRD, the Helm
//! chart's operator identity (ServiceAccount, ClusterRole, Role and bindings) and the
//! chart's own Deployments (no pods run), rendered from helm/goodsmall, and the user,
//! product, order and payment services as processes on Redis, MariaDB and Kafka. The
//! operator runs as its own process authenticating as the chart's ServiceAccount.

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use goodsmall_platform::auth::{KeyPair, KeySettings, Role, TokenSigner};
use goodsmall_testkit::{free_port, repo_root, ControlPlane, ServiceProcess};
use serde_json::{json, Value};

/// The chart's release namespace, where the operator's Lease and the Deployments live.
pub const NAMESPACE: &str = "goodsmall-system";
/// The chart's ServiceAccount for the operator (`<release>-operator`).
pub const OPERATOR_ACCOUNT: &str = "goodsmall-operator";
pub const PATIENCE: Duration = Duration::from_secs(60);

pub struct Cluster {
    pub plane: ControlPlane,
    /// A kubeconfig authenticating as the chart's operator ServiceAccount.
    pub operator_kubeconfig: PathBuf,
    keys: KeyPair,
    /// The operator's own pair: it signs internal-API tokens, the order service checks.
    operator_keys: KeyPair,
    pub redis: String,
    /// Vouches for the sessions in Redis (without it the others answer 503 to tokens).
    #[allow(dead_code)]
    pub user: ServiceProcess,
    pub product: ServiceProcess,
    pub order: ServiceProcess,
    /// How the order service is configured, for more replicas of it.
    order_env: Vec<(String, String)>,
    /// Runs the saga's payment side (expiry) for as long as the cluster lives.
    #[allow(dead_code)]
    pub payment: ServiceProcess,
    pub client: reqwest::Client,
    logs: PathBuf,
}

impl Cluster {
    /// Unpaid orders expire after two minutes (longer than any test's drop).
    pub async fn start() -> Cluster {
        Cluster::start_with(120).await
    }

    /// Unpaid orders expire after `payment_timeout_secs`.
    pub async fn start_with(payment_timeout_secs: u64) -> Cluster {
        let plane = ControlPlane::start().await;
        plane.kubectl_ok(&["apply", "-f", &repo_root().join("crds/flashsale.yaml").display().to_string()], None);
        plane.kubectl_ok(&["create", "namespace", NAMESPACE], None);
        let rbac = render_chart("ServiceAccount,ClusterRole,ClusterRoleBinding,Role,RoleBinding");
        plane.kubectl_ok(&["apply", "-n", NAMESPACE, "-f", "-"], Some(&rbac));
        plane.kubectl_ok(
            &["apply", "-n", NAMESPACE, "-f", "-"],
            Some(&render_chart_with("Deployment", ONE_REPLICA_NO_AUTOSCALER)),
        );
        plane
            .kubectl_ok(&["wait", "--for=condition=Established", "crd/flashsales.goodsmall.io", "--timeout=60s"], None);
        let operator_kubeconfig = plane.service_account_kubeconfig(NAMESPACE, OPERATOR_ACCOUNT);

        let logs = std::env::temp_dir().join(goodsmall_testkit::unique_name("kube-shop"));
        std::fs::create_dir_all(&logs).unwrap();
        let (keys, operator_keys) = (KeyPair::generate(), KeyPair::generate());
        let redis = goodsmall_testkit::redis_url().await;
        let brokers = goodsmall_testkit::kafka_brokers().await;
        let namespace = goodsmall_testkit::unique_name("kube");
        let (product_db, order_db, payment_db) = (
            goodsmall_testkit::mysql_url("kube_product").await,
            goodsmall_testkit::mysql_url("kube_order").await,
            goodsmall_testkit::mysql_url("kube_payment").await,
        );
        let common = |extra: &[(&str, &str)]| -> Vec<(String, String)> {
            [
                ("GOODSMALL_REDIS__URL", redis.as_str()),
                ("GOODSMALL_AUTH__PUBLIC_KEY_PEM", keys.public_pem.as_str()),
                ("GOODSMALL_KAFKA__BROKERS", brokers.as_str()),
                ("GOODSMALL_KAFKA__NAMESPACE", namespace.as_str()),
                ("GOODSMALL_LOG__FORMAT", "json"),
            ]
            .iter()
            .chain(extra)
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
        };
        let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
        let user_db = goodsmall_testkit::mysql_url("kube_user").await;
        let mut user = ServiceProcess::user_service(
            &redis,
            &user_db,
            (&keys.private_pem, &keys.public_pem),
            &[],
            &logs.join("user.log"),
        );
        user.start(&client).await;
        let mut product = ServiceProcess::service(
            "goodsmall-product",
            common(&[("GOODSMALL_PRODUCT__DATABASE__URL", &product_db)]),
            &logs.join("product.log"),
        );
        product.start(&client).await;
        let order_env = common(&[
            ("GOODSMALL_ORDER__DATABASE__URL", &order_db),
            ("GOODSMALL_ORDER__PRODUCT_API_URL", &product.base()),
            ("GOODSMALL_ORDER__OPERATOR_PUBLIC_KEY_PEM", &operator_keys.public_pem),
        ]);
        let mut order = ServiceProcess::service("goodsmall-order", order_env.clone(), &logs.join("order.log"));
        order.start(&client).await;
        let mut payment = ServiceProcess::service(
            "goodsmall-payment",
            common(&[
                ("GOODSMALL_PAYMENT__DATABASE__URL", &payment_db),
                ("GOODSMALL_PAYMENT__TIMEOUT_SECS", &payment_timeout_secs.to_string()),
            ]),
            &logs.join("payment.log"),
        );
        payment.start(&client).await;
        Cluster {
            plane,
            operator_kubeconfig,
            keys,
            operator_keys,
            redis,
            user,
            product,
            order,
            order_env,
            payment,
            client,
            logs,
        }
    }

    /// An operator replica `pod` as the chart runs it (its ServiceAccount, its Lease).
    pub fn operator(&self, pod: &str) -> ServiceProcess {
        let port = free_port();
        let env = [
            ("KUBECONFIG", self.operator_kubeconfig.display().to_string()),
            ("GOODSMALL_OPERATOR__ORDER_API_URL", self.order.base()),
            ("GOODSMALL_OPERATOR__INTERNAL_KEY_PEM", self.operator_keys.private_pem.clone()),
            ("GOODSMALL_OPERATOR__REDIS_URL", self.redis.clone()),
            ("GOODSMALL_OPERATOR__PRODUCT_API_URL", self.product.base()),
            ("GOODSMALL_OPERATOR__REFRESH_SECS", "1".to_owned()),
            ("GOODSMALL_OPERATOR__LISTEN", format!("127.0.0.1:{port}")),
            ("POD_NAMESPACE", NAMESPACE.to_owned()),
            ("POD_NAME", pod.to_owned()),
            ("RUST_LOG", "info,kube=warn".to_owned()),
        ];
        let env = env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        ServiceProcess::new("goodsmall-operator", port, env, &self.logs.join(format!("{pod}.log")))
    }

    /// Another replica of the order service (same database, Redis and topics).
    pub fn order_replica(&self, name: &str) -> ServiceProcess {
        ServiceProcess::service("goodsmall-order", self.order_env.clone(), &self.logs.join(format!("{name}.log")))
    }

    pub fn token(&self, user_id: i64, role: Role) -> String {
        let signer =
            TokenSigner::new(&self.keys.private_pem, KeySettings::default().issuer(), Duration::from_secs(3600))
                .unwrap();
        signer.issue(user_id, role, &format!("session-{user_id}")).unwrap()
    }

    /// A product of merchant `merchant_id`, through the product service.
    pub async fn product_of(&self, merchant_id: i64) -> i64 {
        let body = json!({ "name": "Lightstick", "description": "limited", "price": "49.00", "quantity": 1000,
            "status": "ON_SALE" });
        let created = self
            .client
            .post(format!("{}/api/products", self.product.base()))
            .bearer_auth(self.token(merchant_id, Role::Merchant))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), reqwest::StatusCode::CREATED, "{:?}", created.text().await);
        created.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
    }

    /// `POST /api/sales/{sale}/purchases` of one unit: (status, body).
    pub async fn buy(&self, sale_id: i64, shopper: i64) -> (u16, Value) {
        self.buy_at(&self.order.base(), sale_id, shopper, &format!("buy-{shopper}")).await
    }

    /// A purchase of one unit at the order replica `base` with the Idempotency-Key `key`.
    pub async fn buy_at(&self, base: &str, sale_id: i64, shopper: i64, key: &str) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{base}/api/sales/{sale_id}/purchases"))
            .bearer_auth(self.token(shopper, Role::Shopper))
            .header("Idempotency-Key", key)
            .json(&json!({ "quantity": 1 }))
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
    }

    /// The FlashSale as JSON.
    pub fn flash_sale(&self, name: &str) -> Value {
        serde_json::from_str(&self.plane.kubectl_ok(&["get", "fs", name, "-n", NAMESPACE, "-o", "json"], None)).unwrap()
    }

    /// Waits until the FlashSale satisfies `done`; returns it.
    pub async fn flash_sale_until(&self, name: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let started = Instant::now();
        loop {
            let fs = self.flash_sale(name);
            if done(&fs) {
                return fs;
            }
            assert!(
                started.elapsed() < PATIENCE,
                "FlashSale {name}: {what} not reached in {PATIENCE:?}; status {}",
                fs["status"]
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// `spec.replicas` of a Deployment in the release namespace.
    pub fn replicas(&self, deployment: &str) -> i64 {
        let out = self
            .plane
            .kubectl_ok(&["get", "deployment", deployment, "-n", NAMESPACE, "-o", "jsonpath={.spec.replicas}"], None);
        out.trim().parse().unwrap_or_else(|_| panic!("replicas of {deployment}: {out:?}"))
    }

    pub async fn replicas_until(&self, deployment: &str, want: i64) {
        let started = Instant::now();
        while self.replicas(deployment) != want {
            assert!(
                started.elapsed() < PATIENCE,
                "{deployment} did not reach {want} replicas (has {})",
                self.replicas(deployment)
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The Events of the FlashSale `name`, oldest first, as (reason, reporting instance).
    pub fn events(&self, name: &str) -> Vec<(String, String)> {
        let selector = format!("regarding.name={name}");
        let out = self.plane.kubectl_ok(
            &["get", "events.events.k8s.io", "-n", NAMESPACE, "--field-selector", &selector, "-o", "json"],
            None,
        );
        let mut items: Vec<Value> =
            serde_json::from_str::<Value>(&out).unwrap()["items"].as_array().cloned().unwrap_or_default();
        items.sort_by_key(|e| e["metadata"]["creationTimestamp"].as_str().unwrap_or_default().to_owned());
        items
            .iter()
            .map(|e| {
                (
                    e["reason"].as_str().unwrap_or_default().to_owned(),
                    e["reportingInstance"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.logs);
        }
    }
}

/// The order and payment Deployments at one replica, which the warm-up raises through the
/// scale subresource (the autoscaler tests add the chart's HPAs or ScaledObjects).
pub const ONE_REPLICA_NO_AUTOSCALER: &str = concat!(
    r#"{"order": {"replicaCount": 1, "autoscaling": {"enabled": false}}, "#,
    r#""payment": {"replicaCount": 1, "autoscaling": {"enabled": false}}}"#
);

/// Objects of the given kinds from the chart, rendered offline (scripts/render_chart.py).
pub fn render_chart(kinds: &str) -> String {
    render_chart_with(kinds, "{}")
}

/// The same, with values merged over the defaults (`--set-json`).
pub fn render_chart_with(kinds: &str, values: &str) -> String {
    let out = std::process::Command::new("python3")
        .arg(repo_root().join("scripts/render_chart.py"))
        .args(["--namespace", NAMESPACE, "--kinds", kinds, "--set-json", values])
        .output()
        .expect("python3 runs");
    assert!(out.status.success(), "rendering the chart failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}
