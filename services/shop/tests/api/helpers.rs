use std::{
    path::PathBuf,
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

use base64::{engine::general_purpose::STANDARD, Engine};
use goodsmall_platform::{
    auth::{KeyPair, Role},
    configuration::{ExposeSecret, Settings},
};
use goodsmall_shop::{configuration::ShopConfig, startup::Shop};
use goodsmall_testkit::SmtpSink;
use goodsmall_user::configuration::{BootstrapAccount, UserSettings};
use rand::RngCore;
use reqwest::{Method, Response, StatusCode};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

mod events;

/// Runs each named scenario `async fn name(shop: TestShop)` in both deployments.
#[macro_export]
macro_rules! in_both_modes {
    ($($scenario:ident),+ $(,)?) => {
        $crate::in_both_modes!(settings = &[]; $($scenario),+);
    };
    // `$settings` is a path from the crate root (the scenarios run in nested modules).
    (settings = $settings:expr; $($scenario:ident),+ $(,)?) => {
        mod embedded {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $scenario() {
                   super::$scenario($crate::helpers::TestShop::embedded_with($settings).await).await
               } )+
        }
        mod distributed {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $scenario() {
                   super::$scenario($crate::helpers::TestShop::distributed_with($settings).await).await
               } )+
        }
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Embedded,
    Distributed,
}

pub struct TestShop {
    pub mode: Mode,
    /// The Kafka the distributed services use (their own namespace); none embedded.
    pub kafka: Option<goodsmall_platform::events::KafkaSettings>,
    pub client: reqwest::Client,
    user_base: String,
    product_base: String,
    order_base: String,
    payment_base: String,
    pub user_settings: UserSettings,
    /// The databases of the services that publish events (product, order, payment):
    /// each holds an outbox.
    event_databases: Vec<String>,
    pub keys: KeyPair,
    smtp: Option<SmtpSink>,
    shutdown: CancellationToken,
    data_dir: Option<PathBuf>,
}

/// Cheap password hashing: the suite creates many accounts.
fn fast_hashing() -> Vec<(String, String)> {
    env(&[
        ("GOODSMALL_HTTP__PORT", "0"),
        ("GOODSMALL_USER__PASSWORD_HASHING__MEMORY_KIB", "1024"),
        ("GOODSMALL_USER__PASSWORD_HASHING__ITERATIONS", "1"),
        ("GOODSMALL_USER__VERIFICATION__RESEND_AFTER_SECS", "2"),
    ])
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// Warnings and errors of the services under test show in a failing test's output.
fn init_logs() {
    let settings = goodsmall_platform::telemetry::LogSettings { filter: "warn".into(), ..Default::default() };
    goodsmall_platform::telemetry::init(&settings);
}

impl TestShop {
    /// The one-process default with extra `GOODSMALL_*` settings.
    pub async fn embedded_with(extra: &[(&str, &str)]) -> Self {
        init_logs();
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "goodsmall-api-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let mut vars = fast_hashing();
        vars.extend(env(&[("GOODSMALL_DATA_DIR", dir.to_str().unwrap()), ("GOODSMALL_DEMO", "false")]));
        vars.extend(env(extra));
        let config = ShopConfig::load_from(None, vars).expect("embedded config");
        let shutdown = CancellationToken::new();
        let shop = Shop::build(config.clone(), shutdown.clone()).await.expect("shop starts");
        let base = format!("http://{}", shop.local_addr());
        tokio::spawn(shop.run());
        let keys = KeyPair::load_or_generate(&dir).expect("keys in the data dir");
        Self {
            mode: Mode::Embedded,
            kafka: None,
            client: client(),
            user_base: base.clone(),
            product_base: base.clone(),
            order_base: base.clone(),
            payment_base: base,
            user_settings: config.user,
            event_databases: [&config.product.database.url, &config.order.database.url, &config.payment.database.url]
                .map(|url| url.expose_secret().to_owned())
                .to_vec(),
            keys,
            smtp: None,
            shutdown,
            data_dir: Some(dir),
        }
    }

    /// The separate services on MariaDB, Redis and Kafka (topics and groups of their
    /// own), with extra `GOODSMALL_*` settings (each service gets its section's).
    pub async fn distributed_with(extra: &[(&str, &str)]) -> Self {
        init_logs();
        let brokers = goodsmall_testkit::kafka_brokers().await;
        let namespace = goodsmall_testkit::unique_name("shop");
        let section = |name: &str| -> Vec<(String, String)> {
            let prefix = format!("GOODSMALL_{name}__");
            extra.iter().filter(|(k, _)| k.starts_with(&prefix)).map(|(k, v)| (k.to_string(), v.to_string())).collect()
        };
        let redis = goodsmall_testkit::redis_url().await;
        let user_db = goodsmall_testkit::mysql_url("user").await;
        let product_db = goodsmall_testkit::mysql_url("product").await;
        let smtp = SmtpSink::start().await;
        let keys = KeyPair::generate();
        let mut data_key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut data_key);
        let shutdown = CancellationToken::new();

        let mut user_env = fast_hashing();
        user_env.extend(vec![
            ("GOODSMALL_REDIS__URL".into(), redis.clone()),
            ("GOODSMALL_AUTH__PRIVATE_KEY_PEM".into(), keys.private_pem.clone()),
            ("GOODSMALL_AUTH__PUBLIC_KEY_PEM".into(), keys.public_pem.clone()),
            ("GOODSMALL_USER__DATABASE__URL".into(), user_db),
            ("GOODSMALL_USER__DATA_KEY".into(), STANDARD.encode(data_key)),
            ("GOODSMALL_USER__MAIL__TRANSPORT".into(), smtp.smtp_url()),
        ]);
        let user_config = goodsmall_user::configuration::ServiceConfig::load_from(None, user_env).expect("user config");
        let user =
            goodsmall_user::startup::application(&user_config, shutdown.clone()).await.expect("user service starts");
        let user_base = format!("http://{}", user.local_addr());
        tokio::spawn(user.run());

        let service_env = |name: &str, database: &str| {
            let mut vars = env(&[
                ("GOODSMALL_HTTP__PORT", "0"),
                ("GOODSMALL_REDIS__URL", &redis),
                ("GOODSMALL_AUTH__PUBLIC_KEY_PEM", &keys.public_pem),
                ("GOODSMALL_KAFKA__BROKERS", &brokers),
                ("GOODSMALL_KAFKA__NAMESPACE", &namespace),
                (&format!("GOODSMALL_{name}__DATABASE__URL"), database),
            ]);
            vars.extend(section(name));
            vars
        };
        let product_config =
            goodsmall_product::configuration::ServiceConfig::load_from(None, service_env("PRODUCT", &product_db))
                .expect("product config");
        let bus = |kafka: &goodsmall_platform::events::KafkaSettings| {
            let (kafka, shutdown) = (kafka.clone(), shutdown.clone());
            async move {
                goodsmall_platform::service::event_bus(Some(&kafka), shutdown).await.expect("the test Kafka broker")
            }
        };
        let product = goodsmall_product::startup::application(
            &product_config,
            &bus(&product_config.kafka).await,
            shutdown.clone(),
        )
        .await
        .expect("product service starts");
        let product_base = format!("http://{}", product.local_addr());
        tokio::spawn(product.run());

        let order_db = goodsmall_testkit::mysql_url("order").await;
        let mut order_env = service_env("ORDER", &order_db);
        // The order service asks the product service who sells a sale's product.
        order_env.push(("GOODSMALL_ORDER__PRODUCT_API_URL".into(), product_base.clone()));
        let order_config =
            goodsmall_order::configuration::ServiceConfig::load_from(None, order_env).expect("order config");
        let order =
            goodsmall_order::startup::application(&order_config, &bus(&order_config.kafka).await, shutdown.clone())
                .await
                .expect("order service starts");
        let order_base = format!("http://{}", order.local_addr());
        tokio::spawn(order.run());

        let payment_db = goodsmall_testkit::mysql_url("payment").await;
        let payment_config =
            goodsmall_payment::configuration::ServiceConfig::load_from(None, service_env("PAYMENT", &payment_db))
                .expect("payment config");
        let payment = goodsmall_payment::startup::application(
            &payment_config,
            &bus(&payment_config.kafka).await,
            shutdown.clone(),
        )
        .await
        .expect("payment service starts");
        let payment_base = format!("http://{}", payment.local_addr());
        tokio::spawn(payment.run());

        Self {
            mode: Mode::Distributed,
            kafka: Some(goodsmall_platform::events::KafkaSettings {
                namespace: Some(namespace.clone()),
                ..goodsmall_platform::events::KafkaSettings::new(brokers.clone())
            }),
            client: client(),
            user_base,
            product_base,
            order_base,
            payment_base,
            user_settings: user_config.user,
            event_databases: vec![product_db, order_db, payment_db],
            keys,
            smtp: Some(smtp),
            shutdown,
            data_dir: None,
        }
    }

    /// Routes a path to the service the chart's route table sends it to, as the
    /// entry point does in a cluster; a path it does not route fails the test (the
    /// entry point would answer 404).
    pub fn url(&self, path: &str) -> String {
        let base = match routed_to(path) {
            Some("user") => &self.user_base,
            Some("product") => &self.product_base,
            Some("order") => &self.order_base,
            Some("payment") => &self.payment_base,
            _ if self.mode == Mode::Embedded => &self.user_base,
            None => panic!(
                "the chart's route table (helm/goodsmall/traffic.yaml) does not route {path}: the entry \
                point answers 404"
            ),
            Some(other) => panic!("the chart's route table sends {path} to {other}, no service of this shop"),
        };
        format!("{base}{path}")
    }

    /// Base URLs of every separate process (one in the embedded mode).
    pub fn bases(&self) -> Vec<&str> {
        let mut bases = vec![self.user_base.as_str()];
        for base in [&self.product_base, &self.order_base, &self.payment_base] {
            if !bases.contains(&base.as_str()) {
                bases.push(base);
            }
        }
        bases
    }

    pub async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Response {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("request sent")
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        self.call(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Response {
        self.call(Method::POST, path, token, Some(body)).await
    }

    /// Bodies of the mails to `email` that really went out (SMTP server or dev
    /// mailbox), oldest first.
    pub async fn mail_bodies(&self, email: &str) -> Vec<String> {
        match &self.smtp {
            Some(smtp) => smtp
                .received()
                .into_iter()
                .filter(|m| m.to.iter().any(|t| t.eq_ignore_ascii_case(email)))
                .map(|m| m.body)
                .collect(),
            None => {
                let mails: Value = self.get(&format!("/api/dev/mailbox?to={email}"), None).await.json().await.unwrap();
                let newest_first = mails.as_array().expect("the dev mailbox lists mails");
                newest_first.iter().rev().map(|m| m["body"].as_str().unwrap_or_default().to_owned()).collect()
            }
        }
    }

    pub async fn mails_to(&self, email: &str) -> usize {
        self.mail_bodies(email).await.len()
    }

    /// The code in the first mail to `email` beyond the `seen` ones, waiting for it.
    pub async fn code_after(&self, email: &str, seen: usize) -> String {
        for _ in 0..200 {
            if let Some(body) = self.mail_bodies(email).await.get(seen) {
                return extract_code(body).unwrap_or_else(|| panic!("no 6-digit code in {body:?}"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no mail number {} to {email} arrived within 10 s", seen + 1)
    }

    /// The code of the first mail to `email` (after one verification request).
    pub async fn verification_code(&self, email: &str) -> String {
        self.code_after(email, 0).await
    }

    pub async fn verify_email(&self, email: &str) {
        let seen = self.mails_to(email).await;
        assert_status(
            self.post("/api/auth/email-verifications", None, json!({ "email": email })).await,
            StatusCode::ACCEPTED,
        )
        .await;
        let code = self.code_after(email, seen).await;
        let confirmed =
            self.post("/api/auth/email-verifications/confirm", None, json!({ "email": email, "code": code })).await;
        assert_status(confirmed, StatusCode::OK).await;
    }

    pub async fn sign_up(&self, email: &str, password: &str) -> Value {
        self.verify_email(email).await;
        let response = self
            .post(
                "/api/users",
                None,
                json!({ "email": email, "password": password, "name": "Park Jimin", "phone": "+82 10-1234-5678",
                    "address": "12 Hannam-daero, Seoul" }),
            )
            .await;
        assert_status(response, StatusCode::CREATED).await
    }

    pub async fn login(&self, email: &str, password: &str) -> Value {
        let response = self.post("/api/auth/login", None, json!({ "email": email, "password": password })).await;
        assert_status(response, StatusCode::OK).await
    }

    /// A new verified shopper, logged in: returns the access token.
    pub async fn shopper(&self) -> String {
        let email = unique_email("shopper");
        self.sign_up(&email, "s3cret-pass").await;
        self.login(&email, "s3cret-pass").await["access_token"].as_str().unwrap().to_owned()
    }

    /// A merchant made the way an operator makes one (the `create-account` command), logged in.
    pub async fn merchant(&self) -> String {
        let email = unique_email("merchant");
        let metrics = goodsmall_platform::metrics::Metrics::new();
        let database = goodsmall_platform::db::Database::connect(
            "user",
            &self.user_settings.database,
            &goodsmall_user::startup::migrations(),
            &metrics,
        )
        .await
        .expect("user database");
        let accounts = goodsmall_user::startup::accounts(&self.user_settings, database).unwrap();
        let account =
            BootstrapAccount { email: email.clone(), password: "m3rchant-pass".into(), name: "Merchant".into() };
        assert!(goodsmall_user::startup::bootstrap(&accounts, &account, Role::Merchant).await.unwrap());
        self.login(&email, "m3rchant-pass").await["access_token"].as_str().unwrap().to_owned()
    }

    /// A direct connection to the user service's database, to look at what is stored.
    pub async fn user_database(&self) -> sqlx::AnyPool {
        sqlx::any::install_default_drivers();
        sqlx::AnyPool::connect(self.user_settings.database.url.expose_secret()).await.expect("user database")
    }

    /// The value of one series in the `/metrics` of the service owning `base_path`;
    /// `None` when that series is not exported (never read as 0, which would hide it).
    pub async fn metric(&self, base_path: &str, series: &str) -> Option<f64> {
        let text = self
            .client
            .get(self.url(base_path).replace(base_path, "/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
            .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap_or_else(|e| panic!("{l:?}: {e}")))
    }
}

impl Drop for TestShop {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(dir) = &self.data_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// The component the chart's public route table (helm/goodsmall/traffic.yaml, the
/// list the Ingress and HTTPRoute are checked against) sends `path` to: the longest
/// matching prefix, matched whole path segments at a time, as `pathType: Prefix` does.
pub fn routed_to(path: &str) -> Option<&'static str> {
    static TABLE: std::sync::OnceLock<Vec<(String, String)>> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../../helm/goodsmall/traffic.yaml");
        let traffic: Value = serde_saphyr::from_str(&std::fs::read_to_string(file).expect("the chart's traffic.yaml"))
            .expect("traffic.yaml is YAML");
        let routes = traffic["routes"].as_object().expect("traffic.yaml has routes");
        routes
            .iter()
            .map(|(prefix, component)| (prefix.clone(), component.as_str().expect("a component name").to_owned()))
            .collect()
    });
    let path = path.split('?').next().unwrap_or(path);
    let matches = |prefix: &str| path == prefix || path.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/'));
    table
        .iter()
        .filter(|(prefix, _)| matches(prefix))
        .max_by_key(|(prefix, _)| prefix.len())
        .map(|(_, component)| component.as_str())
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap()
}

pub fn unique_email(prefix: &str) -> String {
    let mut bytes = [0u8; 6];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let tag: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}-{tag}@example.com")
}

fn extract_code(body: &str) -> Option<String> {
    body.split(|c: char| !c.is_ascii_digit()).find(|w| w.len() == 6).map(str::to_owned)
}

/// Asserts the status and returns the JSON body (Null when empty).
pub async fn assert_status(response: Response, expected: StatusCode) -> Value {
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, expected, "body: {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// Asserts a problem+json answer with this status and code; returns the document.
pub async fn assert_problem(response: Response, status: StatusCode, code: &str) -> Value {
    let content_type = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
    let problem = assert_status(response, status).await;
    assert_eq!(content_type.as_deref(), Some("application/problem+json"), "{problem}");
    assert_eq!(problem["code"], code, "{problem}");
    assert_eq!(problem["status"], status.as_u16(), "{problem}");
    assert!(problem["type"].as_str().is_some_and(|t| !t.is_empty()), "{problem}");
    assert!(problem["title"].as_str().is_some_and(|t| !t.is_empty()), "{problem}");
    problem
}
