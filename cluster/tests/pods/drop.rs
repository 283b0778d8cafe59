//! A whole drop served by pods: the operator (a pod with the chart's ServiceAccount,
//! in-cluster configuration) warms up order and payment so that their new pods are
//! Ready before the opening (`kubectl wait --for=condition=Scaled` returns then), opens
//! the sale on time, and 300 shoppers buy 100 units
//! through the Services: exactly 100 sold, every order paid and COMPLETE, stock
//! conserved at every read.

use std::time::{Duration, Instant};

use crate::{
    release::Release,
    shoppers::{self, counters, settled_counters},
};

pub const STOCK: i64 = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_drop_is_served_by_pods_warmed_up_before_the_opening() {
    let (release, product) = Release::with_product("pods-drop", &[]).await;

    // Opening a minute ahead; the warm-up starts 45 s before it and asks for 3 pods each.
    let opens_in = Duration::from_secs(60);
    let applied = Instant::now();
    let manifest =
        release.flash_sale_manifest("drop", product, STOCK, opens_in, Duration::from_secs(600), "45s", Some(3));
    release.kubectl_ok(&["apply", "-f", "-"], Some(&manifest));
    let warm = release.flash_sale_until("drop", "WarmingUp", opens_in, |fs| fs["status"]["phase"] == "WarmingUp");
    let sale = warm["status"]["saleId"].as_i64().expect("the status names the sale");
    let asked = applied.elapsed();
    // The operator says so when the pods are Ready, not when it asked for them.
    let waited = release.kubectl_ok(
        &["wait", "--for=condition=Scaled", "fs/drop", &format!("--timeout={}s", opens_in.as_secs())],
        None,
    );
    assert!(waited.contains("condition met"), "{waited}");
    let ready = applied.elapsed();
    assert_eq!(
        (release.ready_replicas("goodsmall-order"), release.ready_replicas("goodsmall-payment")),
        (3, 3),
        "Scaled means 3 Ready pods each"
    );
    assert!(
        ready < opens_in,
        "the warm-up's pods were Ready {ready:.1?} after the apply, after the opening ({opens_in:?})"
    );
    eprintln!("warm-up asked at {asked:.1?}, all 6 pods Ready at {ready:.1?} (opening at {opens_in:?})");
    assert_eq!(counters(&release, sale, STOCK).await, (STOCK, 0, 0), "the stock is pre-loaded, nothing sold");

    release.flash_sale_until("drop", "Open", opens_in + Duration::from_secs(30), |fs| fs["status"]["phase"] == "Open");
    let opened_late = applied.elapsed().saturating_sub(opens_in);
    eprintln!("opened {opened_late:.1?} after opensAt");

    let crowd = shoppers::buy(&release, sale, 1_000, 300, 32).await;
    eprintln!(
        "crowd: {} accepted, refused {:?}, {} × 5xx, {} connection errors, longest purchase {:.1?}",
        crowd.accepted.len(),
        crowd.refused,
        crowd.server_errors,
        crowd.connection_errors,
        crowd.longest
    );
    assert_eq!(crowd.accepted.len() as i64, STOCK, "exactly the stock is sold: {crowd:?}");
    assert_eq!(
        crowd.refused.get("SOLD_OUT").copied().unwrap_or(0),
        200,
        "everyone else is told SOLD_OUT: {:?}",
        crowd.refused
    );
    assert_eq!(crowd.server_errors, 0, "no 5xx");

    shoppers::pay_all(&release, &crowd.accepted).await;
    assert_eq!(settled_counters(&release, sale, STOCK).await, (0, 0, STOCK), "every unit sold and paid");
    release.flash_sale_until("drop", "SoldOut", Duration::from_secs(60), |fs| fs["status"]["phase"] == "SoldOut");
}
