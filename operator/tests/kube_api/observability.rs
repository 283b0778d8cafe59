//! The cluster operator's own series in a real Prometheus: the `goodsmall-operator`
//! binary, on a real API server, is scraped while a drop goes from Scheduled to Closed
//! and while the order service is down (its reconciles fail, reason `sale`). Every panel
//! query that reads operator or stock-engine series (the whole Operator dashboard, the
//! Drop dashboard's phase panel, the Services dashboard's stock-engine panels) returns
//! data from this binary alone, and what it exports is exactly the rows of
//! `docs/metrics.md` marked *operator*, *cluster operator* or *engine*.

use std::{
    collections::BTreeSet,
    time::{Duration, SystemTime},
};

use goodsmall_testkit::prometheus::{
    dashboard_queries, documented_metrics, family, goodsmall_families, metric_names, PanelQuery, Prometheus,
};

use crate::{
    cluster::{Cluster, PATIENCE},
    drop::manifest,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operator_panel_returns_data_scraped_from_the_cluster_operator_binary() {
    let mut cluster = Cluster::start().await;
    let mut operator = cluster.operator("operator-0");
    operator.start(&cluster.client).await;
    let prometheus = Prometheus::start(&[("goodsmall-operator", &operator.base())]).await;
    let started = SystemTime::now();

    // A drop through its phases, with a purchase while it is open.
    let product = cluster.product_of(7).await;
    let observed = manifest("observed-drop", product, 2, Duration::from_secs(4), Duration::from_secs(6), "2s");
    cluster.plane.kubectl_ok(&["apply", "-f", "-"], Some(&observed));
    // A drop with a waiting room beside it (its series, its status, its Events).
    let queued = manifest("queued-drop", product, 2, Duration::from_secs(4), Duration::from_secs(60), "3s")
        + "  admission:\n    mode: Queue\n    preQueue: 2s\n    turnTTL: 10s\n";
    cluster.plane.kubectl_ok(&["apply", "-f", "-"], Some(&queued));
    let open = cluster.flash_sale_until("observed-drop", "Open", |fs| fs["status"]["phase"] == "Open").await;
    let sale = open["status"]["saleId"].as_i64().expect("the status names the sale");
    let (status, body) = cluster.buy(sale, 100).await;
    assert_eq!(status, 202, "{body}");
    cluster.flash_sale_until("observed-drop", "Closed", |fs| fs["status"]["phase"] == "Closed").await;
    let drained = cluster
        .flash_sale_until("queued-drop", "a drained room", |fs| fs["status"]["queue"]["state"] == "Drained")
        .await;
    assert_eq!(drained["status"]["queue"]["waiting"], 0, "{drained}");
    let reasons: Vec<String> = cluster.events("queued-drop").into_iter().map(|(reason, _)| reason).collect();
    for reason in ["QueueOpened", "QueueShuffled"] {
        assert!(reasons.iter().any(|r| r == reason), "the room's Event {reason}: {reasons:?}");
    }
    let table = cluster.plane.kubectl_ok(&["get", "fs", "queued-drop", "-n", crate::cluster::NAMESPACE], None);
    assert_eq!(crate::drop::printed_columns(&table, &["WAITING"]), Some(vec!["0".to_owned()]), "{table}");

    // The order service goes down: the next FlashSale cannot get its sale record, and the
    // failures are counted by reason; back up, the FlashSale is scheduled.
    cluster.order.kill_9();
    let later = manifest("unrecorded-drop", product, 2, Duration::from_secs(3600), Duration::from_secs(3600), "10m");
    cluster.plane.kubectl_ok(&["apply", "-f", "-"], Some(&later));
    prometheus
        .await_positive(
            r#"goodsmall_operator_reconcile_errors_total{job="goodsmall-operator",reason="sale"}"#,
            PATIENCE,
        )
        .await;
    cluster.order.start(&cluster.client).await;
    cluster.flash_sale_until("unrecorded-drop", "Scheduled", |fs| fs["status"]["phase"] == "Scheduled").await;
    for query in [
        r#"goodsmall_operator_flash_sales{phase="Closed"}"#,
        r#"goodsmall_operator_flash_sales{phase="Scheduled"}"#,
        r#"goodsmall_operator_flash_sale_phase{flash_sale="goodsmall-system/unrecorded-drop",phase="Scheduled"}"#,
        r#"goodsmall_operator_reconcile_duration_seconds_count"#,
    ] {
        prometheus.await_positive(query, PATIENCE).await;
    }

    // What the binary exports is exactly its rows of docs/metrics.md.
    let documented = documented_metrics();
    let all: BTreeSet<String> = documented.iter().map(|m| m.name.clone()).collect();
    let owned: BTreeSet<String> = documented
        .iter()
        .filter(|m| ["operator", "cluster operator", "engine"].contains(&m.exported_by.as_str()))
        .map(|m| m.name.clone())
        .collect();
    let exported = goodsmall_families(&prometheus.names(Some("goodsmall-operator")).await, &all);
    assert_eq!(exported, owned, "the operator binary's series against docs/metrics.md (operator and engine rows)");

    // Every panel query that reads only the operator's series, over the run.
    let every = dashboard_queries();
    let reads_operator = |q: &PanelQuery| {
        let names = metric_names(&q.expr);
        !names.is_empty() && names.iter().all(|n| owned.contains(&family(n, &all)))
    };
    let queries: Vec<PanelQuery> = every.iter().filter(|q| reads_operator(q)).cloned().collect();
    let not_covered: Vec<&PanelQuery> =
        every.iter().filter(|q| q.dashboard == "Operator" && !reads_operator(q)).collect();
    assert!(not_covered.is_empty(), "Operator dashboard queries reading other series: {not_covered:?}");
    for dashboard in ["Operator", "Drop", "Services"] {
        assert!(
            queries.iter().any(|q| q.dashboard == dashboard),
            "no {dashboard} panel reads the operator: {queries:?}"
        );
    }
    let failures = prometheus.failing_queries(&queries, &[("$sale_id", sale.to_string())], started).await;
    assert!(
        failures.is_empty(),
        "{} of {} operator queries failed:\n{}",
        failures.len(),
        queries.len(),
        failures.join("\n")
    );
}
