//! A whole drop as a merchant and an SRE see it with `kubectl`: the phases and the
//! Remaining column move as shoppers buy through the order service, `kubectl wait`
//! returns on Ready, every transition is an Event, and the order and payment
//! Deployments are scaled up for the warm-up through the scale subresource and back
//! after the close. The operator runs with the chart's RBAC (a call outside it is
//! refused) and is killed and restarted mid-drop without announcing anything twice.

use std::{
    collections::BTreeSet,
    sync::{Arc, Mutex},
    time::Duration,
};

use crate::cluster::{Cluster, NAMESPACE, PATIENCE};
use chrono::{SecondsFormat, Utc};

const STOCK: i64 = 3;

/// A FlashSale opening `opens_in` from now for `open_for`, warming up `lead` ahead.
pub fn manifest(name: &str, product: i64, stock: i64, opens_in: Duration, open_for: Duration, lead: &str) -> String {
    let at =
        |d: Duration| (Utc::now() + chrono::Duration::from_std(d).unwrap()).to_rfc3339_opts(SecondsFormat::Secs, true);
    format!(
        "apiVersion: goodsmall.io/v1alpha1\nkind: FlashSale\nmetadata:\n  name: {name}\n  namespace: {NAMESPACE}\n\
         spec:\n  productId: {product}\n  stock: {stock}\n  price: \"49.00\"\n  opensAt: {}\n  closesAt: {}\n  \
         perUserLimit: 1\n  warmup:\n    lead: {lead}\n    orderReplicas: 4\n    paymentReplicas: 3\n",
        at(opens_in),
        at(opens_in + open_for)
    )
}

/// The named columns of the one row of a `kubectl get` table, cut at the header's
/// column offsets (a column with no value is empty, not skipped).
pub fn printed_columns(table: &str, names: &[&str]) -> Option<Vec<String>> {
    let mut lines = table.lines();
    let (header, row) = (lines.next()?, lines.next()?);
    let starts: Vec<usize> = header
        .match_indices(|c: char| c != ' ')
        .filter(|(i, _)| *i == 0 || header.as_bytes()[i - 1] == b' ')
        .map(|(i, _)| i)
        .collect();
    names
        .iter()
        .map(|name| {
            let column = starts.iter().position(|&i| header[i..].starts_with(name))?;
            let end = starts.get(column + 1).copied().unwrap_or(row.len()).min(row.len());
            Some(row.get(starts[column]..end).unwrap_or("").trim().to_owned())
        })
        .collect()
}

#[test]
fn columns_are_cut_at_the_headers_offsets() {
    let table = "NAME   PHASE       PRODUCT   REMAINING   OPENS\ndrop   Scheduled   7                     2030-01-01\n";
    assert_eq!(printed_columns(table, &["PHASE", "REMAINING"]), Some(vec!["Scheduled".to_owned(), String::new()]));
    let table = "NAME   PHASE   PRODUCT   REMAINING   OPENS\ndrop   Open    7         2           2030-01-01\n";
    assert_eq!(printed_columns(table, &["PHASE", "REMAINING"]), Some(vec!["Open".to_owned(), "2".to_owned()]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drop_goes_from_scheduled_to_closed_under_kubectl_with_the_charts_rbac() {
    let cluster = Cluster::start().await;
    let mut operator = cluster.operator("operator-0");
    operator.set_env("GOODSMALL_OPERATOR__LEASE_DURATION_SECS", "3");
    operator.start(&cluster.client).await;

    // What `kubectl get fs` shows, sampled until the drop is over.
    let rows: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let name = "lightstick-drop";
    let product = cluster.product_of(7).await;
    cluster.plane.kubectl_ok(
        &["apply", "-f", "-"],
        // The warm-up starts 16 s after the apply: time for the Scheduled checks below on a
        // loaded machine (kubectl calls take a second or more there) before it can scale.
        Some(&manifest(name, product, STOCK, Duration::from_secs(24), Duration::from_secs(14), "8s")),
    );
    let watcher = {
        let (rows, kubeconfig, plane_kubectl) =
            (rows.clone(), cluster.plane.kubeconfig.clone(), cluster.plane.kubectl_path());
        tokio::task::spawn_blocking(move || loop {
            let out = std::process::Command::new(&plane_kubectl)
                .args([&format!("--kubeconfig={}", kubeconfig.display()), "get", "fs", name, "-n", NAMESPACE])
                .output()
                .unwrap();
            // Until the operator's first status, the phase is empty.
            let printed = printed_columns(&String::from_utf8_lossy(&out.stdout), &["PHASE", "REMAINING"])
                .filter(|row| !row[0].is_empty());
            if let Some(row) = printed {
                let row = (row[0].clone(), row[1].clone());
                let mut rows = rows.lock().unwrap();
                if rows.last() != Some(&row) {
                    rows.push(row.clone());
                }
                if row.0 == "Closed" {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(250));
        })
    };

    let scheduled = cluster.flash_sale_until(name, "Scheduled", |fs| fs["status"]["phase"] == "Scheduled").await;
    // The opening and closing instants, as written, while they are still to come (a
    // `date` column would print their age: `<invalid>` for a future time).
    let table = cluster.plane.kubectl_ok(&["get", "fs", name, "-n", NAMESPACE], None);
    let times =
        printed_columns(&table, &["OPENS", "CLOSES"]).unwrap_or_else(|| panic!("no OPENS/CLOSES columns:\n{table}"));
    assert_eq!(
        times,
        [&scheduled["spec"]["opensAt"], &scheduled["spec"]["closesAt"]].map(|t| t.as_str().unwrap().to_owned()),
        "{table}"
    );
    let ready = cluster
        .plane
        .kubectl_ok(&["wait", "--for=condition=Ready", &format!("fs/{name}"), "-n", NAMESPACE, "--timeout=60s"], None);
    assert!(ready.contains("condition met"), "{ready}");
    assert_eq!(
        (cluster.replicas("goodsmall-order"), cluster.replicas("goodsmall-payment")),
        (1, 1),
        "nothing scaled before the warm-up"
    );

    // The warm-up: stock pre-loaded, replicas raised through the scale subresource.
    let warm = cluster.flash_sale_until(name, "WarmingUp", |fs| fs["status"]["phase"] == "WarmingUp").await;
    cluster.replicas_until("goodsmall-order", 4).await;
    cluster.replicas_until("goodsmall-payment", 3).await;
    let sale_id = warm["status"]["saleId"].as_i64().expect("the status names the sale");
    let (status, body) = cluster.buy(sale_id, 100).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("SALE_NOT_OPEN")), "{body}");

    // Open: shoppers buy through the order service until it is sold out.
    cluster.flash_sale_until(name, "Open", |fs| fs["status"]["phase"] == "Open").await;
    for shopper in 0..STOCK {
        let (status, body) = cluster.buy(sale_id, 100 + shopper).await;
        assert_eq!(status, 202, "{body}");
        cluster
            .flash_sale_until(name, "Remaining counting down", |fs| fs["status"]["remaining"] == STOCK - shopper - 1)
            .await;
        if shopper == 0 {
            // The operator restarts mid-drop: it picks up from the object and the records.
            operator.kill_9();
            operator.start(&cluster.client).await;
        }
    }
    let (status, body) = cluster.buy(sale_id, 999).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("SOLD_OUT")), "{body}");
    cluster.flash_sale_until(name, "SoldOut", |fs| fs["status"]["phase"] == "SoldOut").await;

    // The close: the replicas go back.
    let closed = cluster.flash_sale_until(name, "Closed", |fs| fs["status"]["phase"] == "Closed").await;
    cluster.replicas_until("goodsmall-order", 1).await;
    cluster.replicas_until("goodsmall-payment", 1).await;
    // Every replica drops its sold-out flag within a refresh; then the engine answers.
    let started = std::time::Instant::now();
    loop {
        let (status, body) = cluster.buy(sale_id, 1000).await;
        match body["code"].as_str() {
            Some("SALE_CLOSED") if status == 409 => break,
            Some("SOLD_OUT") if started.elapsed() < Duration::from_secs(5) => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            _ => panic!("after the close: {status} {body}"),
        }
    }
    assert_eq!(
        closed["status"]["remaining"].as_i64().unwrap()
            + closed["status"]["reserved"].as_i64().unwrap()
            + closed["status"]["sold"].as_i64().unwrap(),
        STOCK
    );
    tokio::time::timeout(PATIENCE, watcher).await.expect("the watcher saw Closed").unwrap();

    // What `kubectl get fs` showed, in order.
    let rows = rows.lock().unwrap().clone();
    let phases: Vec<&str> = rows.iter().map(|(phase, _)| phase.as_str()).fold(Vec::new(), |mut seen, p| {
        if seen.last() != Some(&p) {
            seen.push(p);
        }
        seen
    });
    assert_eq!(phases, ["Scheduled", "WarmingUp", "Open", "SoldOut", "Closed"], "kubectl get fs: {rows:?}");
    let remaining: Vec<i64> = rows.iter().filter_map(|(_, r)| r.parse().ok()).collect();
    assert!(
        remaining.windows(2).all(|w| w[0] >= w[1]) && remaining.first() == Some(&STOCK) && remaining.contains(&0),
        "Remaining counted down: {rows:?}"
    );

    // Every transition is an Event, once, across the restart.
    let reasons: Vec<String> = cluster.events(name).into_iter().map(|(reason, _)| reason).collect();
    for expected in ["StockLoaded", "WarmingUp", "Open", "SoldOut", "Closed"] {
        assert_eq!(reasons.iter().filter(|r| *r == expected).count(), 1, "one {expected} Event: {reasons:?}");
    }
    let distinct: BTreeSet<&String> = reasons.iter().collect();
    assert!(!distinct.contains(&"ReconcileFailed".to_owned()), "no failures: {reasons:?}");

    // The operator's identity can do its job and nothing more.
    let refused = cluster.plane.kubectl_as(&cluster.operator_kubeconfig, &["get", "secrets", "-n", NAMESPACE], None);
    assert!(!refused.status.success() && String::from_utf8_lossy(&refused.stderr).contains("Forbidden"), "{refused:?}");
    let refused = cluster.plane.kubectl_as(
        &cluster.operator_kubeconfig,
        &["scale", "deployment/other", "--replicas=3", "-n", NAMESPACE],
        None,
    );
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("forbidden"),
        "scaling another Deployment is refused: {refused:?}"
    );
}
