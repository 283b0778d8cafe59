//! Two operator replicas against one API server: exactly one holds the Lease and acts;
//! `kill -9` of the leader mid-drop hands the Lease to the other within the lease
//! duration, the status keeps moving, the Deployments are scaled once (one warm-up
//! claim, not two), and no transition is announced twice.

use std::time::{Duration, Instant};

use crate::{
    cluster::{Cluster, NAMESPACE, PATIENCE},
    drop::manifest,
};

const LEASE_SECS: u64 = 4;

fn holder(cluster: &Cluster) -> String {
    let out = cluster.plane.kubectl(&[
        "get",
        "lease",
        "goodsmall-operator",
        "-n",
        NAMESPACE,
        "-o",
        "jsonpath={.spec.holderIdentity}",
    ]);
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

async fn holder_becomes(cluster: &Cluster, wanted: impl Fn(&str) -> bool, what: &str) -> String {
    let started = Instant::now();
    loop {
        let now = holder(cluster);
        if wanted(&now) {
            return now;
        }
        assert!(started.elapsed() < PATIENCE, "the Lease never got {what}; held by {now:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_leader_acts_and_the_other_takes_over_when_it_is_killed() {
    let cluster = Cluster::start().await;
    let mut replicas = [cluster.operator("operator-a"), cluster.operator("operator-b")];
    for replica in &mut replicas {
        replica.set_env("GOODSMALL_OPERATOR__LEASE_DURATION_SECS", &LEASE_SECS.to_string());
        replica.start(&cluster.client).await;
    }
    let leader = holder_becomes(&cluster, |h| h == "operator-a" || h == "operator-b", "a holder").await;
    let (leading, standing_by) = if leader == "operator-a" { (0, 1) } else { (1, 0) };

    let name = "failover-drop";
    let product = cluster.product_of(8).await;
    cluster.plane.kubectl_ok(
        &["apply", "-f", "-"],
        Some(&manifest(name, product, 5, Duration::from_secs(4), Duration::from_secs(40), "3s")),
    );
    let open = cluster.flash_sale_until(name, "Open", |fs| fs["status"]["phase"] == "Open").await;
    let sale_id = open["status"]["saleId"].as_i64().unwrap();
    cluster.replicas_until("goodsmall-order", 4).await;
    let before = cluster.events(name);
    assert!(!before.is_empty() && before.iter().all(|(_, by)| *by == leader), "only the leader acted: {before:?}");
    let _ = standing_by;

    // The leader dies mid-drop; the other takes the Lease within its duration.
    replicas[leading].kill_9();
    let killed_at = Instant::now();
    let successor = if leading == 0 { "operator-b" } else { "operator-a" };
    holder_becomes(&cluster, |h| h == successor, successor).await;
    let took = killed_at.elapsed();
    assert!(took <= Duration::from_secs(LEASE_SECS * 3), "taken over in {took:?} (lease {LEASE_SECS} s)");

    // The status keeps moving under the new leader.
    let (status, body) = cluster.buy(sale_id, 500).await;
    assert_eq!(status, 202, "{body}");
    cluster.flash_sale_until(name, "Remaining 4 under the new leader", |fs| fs["status"]["remaining"] == 4).await;
    let annotations = cluster.plane.kubectl_ok(
        &["get", "deployment", "goodsmall-order", "-n", NAMESPACE, "-o", "jsonpath={.metadata.annotations}"],
        None,
    );
    let annotations: serde_json::Value = serde_json::from_str(&annotations).unwrap();
    let claims: serde_json::Value =
        serde_json::from_str(annotations["goodsmall.io/warmup-claims"].as_str().expect("a claim")).unwrap();
    assert_eq!(claims.as_object().unwrap().len(), 1, "one claim for the one sale: {claims}");
    assert_eq!(cluster.replicas("goodsmall-order"), 4, "scaled once, not twice");
    assert_eq!(annotations["goodsmall.io/min-replicas"], "1", "the chart's floor is untouched");
    assert_eq!(
        annotations["goodsmall.io/baseline-replicas"],
        serde_json::Value::Null,
        "no copy of the floor: {annotations}"
    );

    for shopper in 501..505 {
        assert_eq!(cluster.buy(sale_id, shopper).await.0, 202);
    }
    cluster.flash_sale_until(name, "SoldOut under the new leader", |fs| fs["status"]["phase"] == "SoldOut").await;
    let events = cluster.events(name);
    assert!(
        events.iter().any(|(reason, by)| reason == "SoldOut" && by == successor),
        "the successor announced the sell-out: {events:?}"
    );
    let reasons: Vec<String> = events.into_iter().map(|(reason, _)| reason).collect();
    for once in ["StockLoaded", "WarmingUp", "Open", "SoldOut"] {
        assert_eq!(
            reasons.iter().filter(|r| *r == once).count(),
            1,
            "{once} announced once across the failover: {reasons:?}"
        );
    }
}
