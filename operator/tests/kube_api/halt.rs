//! The merchant's emergency stop on a real API server: `kubectl annotate fs NAME
//! goodsmall.io/halted=true` makes purchases answer 409 SALE_HALTED within a second on
//! every order replica, `kubectl get fs` shows Halted with a condition and an Event, an
//! order already made goes on through the saga (here: it expires unpaid and its unit
//! comes back), and removing the annotation resumes the drop.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{
    cluster::{Cluster, NAMESPACE},
    drop::{manifest, printed_columns},
};

/// Until every replica answers `code` to a shopper at the per-shopper limit (so the
/// probes never take stock); how long that took.
async fn every_replica_answers(
    cluster: &Cluster,
    bases: &[String],
    sale: i64,
    shopper: i64,
    code: &str,
    within: Duration,
) -> Duration {
    let started = Instant::now();
    for attempt in 0.. {
        let mut all = true;
        for base in bases {
            let (status, body) = cluster.buy_at(base, sale, shopper, &format!("probe-{attempt}")).await;
            all &= status == 409 && body["code"] == code;
        }
        if all {
            return started.elapsed();
        }
        assert!(started.elapsed() < within, "not every replica answered {code} within {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    unreachable!()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn annotating_halted_stops_purchases_on_every_replica_within_a_second_and_removing_it_resumes() {
    let cluster = Cluster::start_with(4).await;
    let mut second = cluster.order_replica("order-1");
    second.start(&cluster.client).await;
    let bases = [cluster.order.base(), second.base()];
    let mut operator = cluster.operator("operator-0");
    operator.start(&cluster.client).await;

    let name = "vinyl-drop";
    let product = cluster.product_of(7).await;
    cluster.plane.kubectl_ok(
        &["apply", "-f", "-"],
        Some(&manifest(name, product, 5, Duration::from_secs(2), Duration::from_secs(120), "1s")),
    );
    let open = cluster.flash_sale_until(name, "Open", |fs| fs["status"]["phase"] == "Open").await;
    let sale = open["status"]["saleId"].as_i64().unwrap();
    let (status, body) = cluster.buy(sale, 100).await;
    assert_eq!(status, 202, "{body}");
    every_replica_answers(&cluster, &bases, sale, 100, "PURCHASE_LIMIT", Duration::from_secs(5)).await;

    let annotated =
        cluster.plane.kubectl_ok(&["annotate", "fs", name, "-n", NAMESPACE, "goodsmall.io/halted=true"], None);
    assert!(annotated.contains("annotated"), "{annotated}");
    let took = every_replica_answers(&cluster, &bases, sale, 100, "SALE_HALTED", Duration::from_secs(1)).await;
    eprintln!("every replica refused within {took:?} of the annotation");
    let (status, body) = cluster.buy_at(&bases[1], sale, 200, "new-shopper").await;
    assert_eq!((status, body["code"].as_str()), (409, Some("SALE_HALTED")), "{body}");
    let halted = cluster.flash_sale_until(name, "Halted", |fs| fs["status"]["phase"] == "Halted").await;
    let condition = halted["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Halted")
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        (condition["status"].as_str(), condition["reason"].as_str()),
        (Some("True"), Some("HaltedByMerchant")),
        "{halted}"
    );
    let table = cluster.plane.kubectl_ok(&["get", "fs", name, "-n", NAMESPACE], None);
    assert_eq!(printed_columns(&table, &["PHASE"]), Some(vec!["Halted".to_owned()]), "{table}");
    assert!(cluster.events(name).iter().any(|(reason, _)| reason == "Halted"), "{:?}", cluster.events(name));

    // The order made before the halt goes on through the saga: unpaid, it expires and
    // its unit is released, while the drop is halted.
    let settled = cluster
        .flash_sale_until(name, "the unpaid order released", |fs| {
            fs["status"]["reserved"] == 0 && fs["status"]["remaining"] == 5
        })
        .await;
    assert_eq!(settled["status"]["phase"], "Halted", "still halted: {settled}");

    cluster.plane.kubectl_ok(&["annotate", "fs", name, "-n", NAMESPACE, "goodsmall.io/halted-"], None);
    // Shopper 100's order was released, so a new purchase of theirs is accepted again.
    let started = Instant::now();
    loop {
        let (status, body) = cluster.buy_at(&bases[1], sale, 100, "after-resume").await;
        if status == 202 {
            break;
        }
        assert_eq!(body["code"], "SALE_HALTED", "{body}");
        assert!(started.elapsed() < Duration::from_secs(1), "not resumed within a second");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let resumed = cluster.flash_sale_until(name, "Open again", |fs| fs["status"]["phase"] == "Open").await;
    let condition = resumed["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Halted")
        .cloned()
        .unwrap_or_default();
    assert_eq!(condition["status"], "False", "{resumed}");
    // The resumption is an Event: the recorder folds a repeated "Open" into the first
    // one's series, so it is seen twice.
    let selector = format!("regarding.name={name},reason=Open");
    let out = cluster.plane.kubectl_ok(
        &["get", "events.events.k8s.io", "-n", NAMESPACE, "--field-selector", &selector, "-o", "json"],
        None,
    );
    let opens: Value = serde_json::from_str(&out).unwrap();
    let seen: i64 = opens["items"].as_array().unwrap().iter().map(|e| e["series"]["count"].as_i64().unwrap_or(1)).sum();
    assert!(seen >= 2, "Open before the halt and again after it: {opens}");
}
