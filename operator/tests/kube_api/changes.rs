//! Spec changes mid-sale and deletion, with the conditions and Events docs/operator.md
//! promises: stock raised (applied), stock below what is held (refused, the sale runs on
//! the terms last accepted), the window moved (closes then); deletion holds on the
//! finalizer until the open reservations settle, then the object, its Redis keys and
//! its warm-up claims are gone.

use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use serde_json::Value;

use crate::{
    cluster::{Cluster, NAMESPACE, PATIENCE},
    drop::manifest,
};

fn condition<'a>(fs: &'a Value, type_: &str) -> &'a Value {
    fs["status"]["conditions"].as_array().and_then(|c| c.iter().find(|c| c["type"] == type_)).unwrap_or(&Value::Null)
}

fn patch_spec(cluster: &Cluster, name: &str, spec: Value) {
    let patch = serde_json::json!({ "spec": spec }).to_string();
    cluster.plane.kubectl_ok(&["patch", "fs", name, "-n", NAMESPACE, "--type=merge", "-p", &patch], None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_mid_sale_are_applied_or_refused_and_deletion_waits_for_the_saga() {
    // Unpaid orders expire after 25 s, so the deletion has reservations to wait for.
    let cluster = Cluster::start_with(25).await;
    let mut operator = cluster.operator("operator-0");
    operator.start(&cluster.client).await;
    let name = "changing-drop";
    let product = cluster.product_of(9).await;
    cluster.plane.kubectl_ok(
        &["apply", "-f", "-"],
        Some(&manifest(name, product, 4, Duration::from_secs(3), Duration::from_secs(600), "2s")),
    );
    let open = cluster.flash_sale_until(name, "Open", |fs| fs["status"]["phase"] == "Open").await;
    let sale_id = open["status"]["saleId"].as_i64().unwrap();
    for shopper in [1, 2] {
        assert_eq!(cluster.buy(sale_id, shopper).await.0, 202);
    }
    cluster.flash_sale_until(name, "2 held", |fs| fs["status"]["remaining"] == 2).await;

    // Stock raised: applied, Ready for the new generation.
    patch_spec(&cluster, name, serde_json::json!({ "stock": 6 }));
    let raised = cluster.flash_sale_until(name, "stock 6 applied", |fs| fs["status"]["remaining"] == 4).await;
    let ready = condition(&raised, "Ready");
    assert_eq!(
        (ready["status"].as_str(), ready["observedGeneration"].as_i64()),
        (Some("True"), raised["metadata"]["generation"].as_i64()),
        "{ready}"
    );

    // Stock below what is held: refused with a condition and a Warning Event; the sale
    // goes on with 6.
    patch_spec(&cluster, name, serde_json::json!({ "stock": 1 }));
    let refused = cluster
        .flash_sale_until(name, "StockBelowCommitted", |fs| condition(fs, "Ready")["reason"] == "StockBelowCommitted")
        .await;
    assert_eq!(condition(&refused, "Ready")["status"], "False");
    assert_eq!(refused["status"]["remaining"], 4, "the terms last accepted stand");
    assert_eq!(cluster.buy(sale_id, 3).await.0, 202, "purchases go on");
    assert!(
        cluster.events(name).iter().any(|(reason, _)| reason == "StockBelowCommitted"),
        "{:?}",
        cluster.events(name)
    );

    // The window moved earlier: the sale closes then.
    patch_spec(&cluster, name, serde_json::json!({ "stock": 6 }));
    let closes = (Utc::now() + chrono::Duration::seconds(3)).to_rfc3339_opts(SecondsFormat::Secs, true);
    patch_spec(&cluster, name, serde_json::json!({ "closesAt": closes }));
    cluster.flash_sale_until(name, "Closed at the new closesAt", |fs| fs["status"]["phase"] == "Closed").await;
    cluster.replicas_until("goodsmall-order", 1).await;

    // Deletion: held by the finalizer while the three reservations are open.
    let mut redis =
        redis::Client::open(cluster.redis.as_str()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let sale_key = goodsmall_sale::keys::sale(sale_id);
    cluster.plane.kubectl_ok(&["delete", "fs", name, "-n", NAMESPACE, "--wait=false"], None);
    let held = cluster.flash_sale(name);
    assert!(
        held["metadata"]["deletionTimestamp"].is_string(),
        "the object waits for its finalizer: {}",
        held["metadata"]
    );
    let reserved: i64 = redis::AsyncCommands::hget(&mut redis, &sale_key, "reserved").await.unwrap();
    assert!(reserved > 0, "reservations were open at the deletion");
    let started = Instant::now();
    loop {
        let out = cluster.plane.kubectl(&["get", "fs", name, "-n", NAMESPACE]);
        if !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("NotFound") {
            break;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "the FlashSale was never released: {}",
            cluster.flash_sale(name)["status"]
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let left: Vec<String> = redis::AsyncCommands::keys(&mut redis, format!("sale:{{{sale_id}}}*")).await.unwrap();
    assert!(left.is_empty(), "the sale's Redis keys are gone: {left:?}");
    let annotations = cluster.plane.kubectl_ok(
        &["get", "deployment", "goodsmall-order", "-n", NAMESPACE, "-o", "jsonpath={.metadata.annotations}"],
        None,
    );
    assert!(!annotations.contains("goodsmall.io/warmup-claims"), "its claims are gone: {annotations}");
    let reasons: Vec<String> = cluster.events(name).into_iter().map(|(reason, _)| reason).collect();
    assert!(reasons.contains(&"Removed".to_owned()), "{reasons:?}");
}
