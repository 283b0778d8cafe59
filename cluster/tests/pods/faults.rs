//! Faults in the middle of a drop, as a cluster has them: pods force-deleted (their
//! node lost, an eviction), the leading operator pod deleted, a `helm upgrade` rolling
//! the order service. Shoppers retry a dropped connection with the same Idempotency-
//! Key, as an app does; they must never see a 5xx nor lose a purchase, and the stock
//! must be conserved.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use crate::{
    release::Release,
    shoppers::{self, counters, settled_counters, taken, Crowd},
};

const STOCK: i64 = 150;

/// A release with a drop open now (warmed up with `replicas` order and payment pods,
/// or not scaled): the release and the sale.
async fn open_drop(prefix: &str, replicas: Option<i64>, stock: i64) -> (Arc<Release>, i64) {
    let (release, product) = Release::with_product(prefix, &[]).await;
    let manifest = release.flash_sale_manifest(
        "drop",
        product,
        stock,
        Duration::from_secs(25),
        Duration::from_secs(900),
        "20s",
        replicas,
    );
    release.kubectl_ok(&["apply", "-f", "-"], Some(&manifest));
    let open = release.flash_sale_until("drop", "Open", Duration::from_secs(90), |fs| fs["status"]["phase"] == "Open");
    let sale = open["status"]["saleId"].as_i64().unwrap();
    (Arc::new(release), sale)
}

/// 400 shoppers buy `STOCK` units, 8 at a time, in a task of their own.
fn crowd(release: &Arc<Release>, sale: i64) -> tokio::task::JoinHandle<Crowd> {
    let release = release.clone();
    tokio::spawn(async move { shoppers::buy(&release, sale, 5_000, 400, 8).await })
}

/// Everything bought is paid and COMPLETE, nothing more was sold than offered.
async fn settles(release: &Release, sale: i64, crowd: &Crowd, fault: &str) {
    eprintln!(
        "{fault}: {} accepted, refused {:?}, {} × 5xx, {} connection errors (retried), longest purchase {:.1?}",
        crowd.accepted.len(),
        crowd.refused,
        crowd.server_errors,
        crowd.connection_errors,
        crowd.longest
    );
    assert_eq!(crowd.server_errors, 0, "{fault}: shoppers saw 5xx");
    assert_eq!(crowd.accepted.len() as i64, STOCK, "{fault}: exactly the stock is sold: {crowd:?}");
    let mut orders: Vec<&String> = crowd.accepted.iter().map(|(_, order)| order).collect();
    orders.sort();
    orders.dedup();
    assert_eq!(orders.len() as i64, STOCK, "{fault}: one order per purchase");
    shoppers::pay_all(release, &crowd.accepted).await;
    assert_eq!(settled_counters(release, sale, STOCK).await, (0, 0, STOCK), "{fault}: every unit sold and paid");
}

/// One pod of `component`, for a fault.
fn a_pod(release: &Release, component: &str) -> String {
    let pods = release.kubectl_ok(
        &[
            "get",
            "pods",
            "-l",
            &format!("app.kubernetes.io/component={component}"),
            "-o",
            "name",
            "--field-selector=status.phase=Running",
        ],
        None,
    );
    pods.lines().next().unwrap_or_else(|| panic!("no running {component} pod\n{}", release.diagnose())).to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn force_deleted_order_and_payment_pods_cost_no_purchase() {
    let (release, sale) = open_drop("pods-kill", Some(2), STOCK).await;
    let buying = crowd(&release, sale);
    taken(&release, sale, 30, STOCK).await;
    let order_pod = a_pod(&release, "order");
    release.kubectl_ok(&["delete", &order_pod, "--force", "--grace-period=0"], None);
    taken(&release, sale, 90, STOCK).await;
    let payment_pod = a_pod(&release, "payment");
    release.kubectl_ok(&["delete", &payment_pod, "--force", "--grace-period=0"], None);
    let crowd = buying.await.unwrap();
    settles(&release, sale, &crowd, "order and payment pods force-deleted").await;
    // Back to at least the warm-up's 2 each (the HPA may well have added more on CPU).
    release.wait_for("the Deployments replace the pods", Duration::from_secs(120), || {
        (release.ready_replicas("goodsmall-order") >= 2 && release.ready_replicas("goodsmall-payment") >= 2)
            .then_some(())
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leading_operator_pod_deleted_mid_drop_is_replaced_by_one_leader() {
    let (release, sale) = open_drop("pods-operator", Some(2), STOCK).await;
    let holder =
        || release.get("lease/goodsmall-operator")["spec"]["holderIdentity"].as_str().unwrap_or_default().to_owned();
    let leader = holder();
    assert!(!leader.is_empty(), "nobody leads");
    let buying = crowd(&release, sale);
    taken(&release, sale, 30, STOCK).await;
    let deleted = Instant::now();
    release.kubectl_ok(&["delete", "pod", &leader, "--wait=false"], None);
    let next = release.wait_for("another operator pod leads", Duration::from_secs(60), || {
        Some(holder()).filter(|h| !h.is_empty() && *h != leader)
    });
    eprintln!("operator failover: {next} leads {:.1?} after {leader} was deleted", deleted.elapsed());
    let pods = release.kubectl_ok(
        &["get", "pods", "-l", "app.kubernetes.io/component=operator", "-o", "jsonpath={.items[*].metadata.name}"],
        None,
    );
    assert!(pods.split_whitespace().any(|p| p == next), "the leader {next} is one of the running pods: {pods}");
    let crowd = buying.await.unwrap();
    settles(&release, sale, &crowd, "leading operator pod deleted").await;
    // The new leader still drives the drop: it sees the sell-out.
    release.flash_sale_until("drop", "SoldOut", Duration::from_secs(60), |fs| fs["status"]["phase"] == "SoldOut");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_helm_upgrade_rolls_the_order_service_while_shoppers_buy() {
    // A drop warmed up with 2 order and payment pods: the operator holds the HPAs'
    // minimum, and the upgrade raises payment's floor above the claim. Helm v4 applies
    // server-side; the chart writes only the floor annotation, so nothing conflicts.
    let (release, sale) = open_drop("pods-upgrade", Some(2), UPGRADE_STOCK).await;
    let before = release.kubectl_ok(
        &["get", "pods", "-l", "app.kubernetes.io/component=order", "-o", "jsonpath={.items[*].metadata.name}"],
        None,
    );
    // Shoppers keep coming, about 20 a second, from before the upgrade until every old
    // pod is gone.
    let going = Arc::new(AtomicBool::new(true));
    let buying = {
        let (release, going) = (release.clone(), going.clone());
        tokio::spawn(
            async move { shoppers::buy_while(&release, sale, 5_000, 2, Duration::from_millis(100), going).await },
        )
    };
    taken(&release, sale, 30, UPGRADE_STOCK).await;
    let started = Instant::now();
    let upgrading = {
        let release = release.clone();
        tokio::task::spawn_blocking(move || {
            release.helm_ok(
                &["upgrade"],
                &["--set", "order.podAnnotations.rolled=yes", "--set", "payment.autoscaling.minReplicas=3"],
            )
        })
    };
    upgrading.await.unwrap();
    let rolled = started.elapsed();
    // The new floor above the drop's claim holds at once; order keeps the claim.
    release.wait_for("payment's HPA at its new floor of 3", Duration::from_secs(10), || {
        (release.get("hpa/goodsmall-payment")["spec"]["minReplicas"] == 3).then_some(())
    });
    assert_eq!(release.get("hpa/goodsmall-order")["spec"]["minReplicas"], 2, "order keeps the warm-up's claim");
    // The replaced pods drain (preStop sleep, then SIGTERM finishes what is in flight).
    let returned = Instant::now();
    release.wait_for("every old order pod gone", Duration::from_secs(90), || {
        let now = release.kubectl_ok(
            &["get", "pods", "-l", "app.kubernetes.io/component=order", "-o", "jsonpath={.items[*].metadata.name}"],
            None,
        );
        before.split_whitespace().all(|old| !now.split_whitespace().any(|p| p == old)).then_some(())
    });
    let drained = returned.elapsed();
    let sold_before_the_end = counters(&release, sale, UPGRADE_STOCK).await;
    going.store(false, Ordering::SeqCst);
    let crowd = buying.await.unwrap();
    eprintln!(
        "helm upgrade --wait rolled the order service in {rolled:.1?}; the last old pod was gone {drained:.1?} later; \
         {} purchases in all, counters then (remaining, reserved, sold) {sold_before_the_end:?}; {} × 5xx, \
         {} connection errors (retried), longest purchase {:.1?}",
        crowd.accepted.len(),
        crowd.server_errors,
        crowd.connection_errors,
        crowd.longest
    );
    assert!(
        sold_before_the_end.0 > 0,
        "the stock must outlast the rollout, or the crowd only met SOLD_OUT: {sold_before_the_end:?}"
    );
    shoppers::served_through(&release, sale, UPGRADE_STOCK, &crowd, "the rollout").await;
}

/// Enough for about 20 purchases a second through a rollout.
const UPGRADE_STOCK: i64 = 3_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_that_breaks_a_component_fails_and_leaves_the_old_pods_serving() {
    let (release, sale) = open_drop("pods-broken", None, STOCK).await;
    let before = release.kubectl_ok(
        &["get", "pods", "-l", "app.kubernetes.io/component=order", "-o", "jsonpath={.items[*].metadata.name}"],
        None,
    );
    // A database URL nothing answers at: the new order pods cannot start.
    let broken = format!("mysql.urls.order=mysql://root@{}:1/goodsmall_order", release.node.address);
    let values = std::env::temp_dir().join(&release.namespace).join("values.yaml").display().to_string();
    let namespace = release.namespace.clone();
    let upgraded = release.node.helm(&[
        "upgrade",
        "goodsmall",
        "helm/goodsmall",
        "-n",
        &namespace,
        "-f",
        &values,
        "--set",
        &broken,
        "--wait",
        "--timeout",
        "60s",
    ]);
    let said = format!("{}{}", String::from_utf8_lossy(&upgraded.stdout), String::from_utf8_lossy(&upgraded.stderr));
    assert!(!upgraded.status.success(), "helm upgrade --wait must fail when a component cannot start: {said}");
    eprintln!("helm upgrade --wait: {}", said.lines().last().unwrap_or_default());

    // The old order pods still serve (maxUnavailable 0, readiness gate): shoppers buy.
    let now = release.kubectl_ok(
        &["get", "pods", "-l", "app.kubernetes.io/component=order", "-o", "jsonpath={.items[*].metadata.name}"],
        None,
    );
    for old in before.split_whitespace() {
        assert!(now.split_whitespace().any(|p| p == old), "the old pod {old} was kept: {now}");
    }
    let crowd = shoppers::buy(&release, sale, 7_000, 20, 4).await;
    assert_eq!((crowd.accepted.len(), crowd.server_errors), (20, 0), "the old pods serve: {crowd:?}");
    shoppers::pay_all(&release, &crowd.accepted).await;

    // The new pod says which setting is wrong.
    let new = now
        .split_whitespace()
        .find(|p| !before.split_whitespace().any(|old| old == *p))
        .expect("a new order pod")
        .to_owned();
    let logs = release.wait_for("the new order pod's log names the setting", Duration::from_secs(60), || {
        // The running attempt's log, or the last crashed one's.
        let logs: String = [vec!["logs", new.as_str()], vec!["logs", new.as_str(), "--previous"]]
            .iter()
            .map(|args| String::from_utf8_lossy(&release.kubectl(args, None).stdout).into_owned())
            .collect();
        logs.contains("order.database.url").then_some(logs)
    });
    eprintln!(
        "the new order pod's log: {}",
        logs.lines().find(|l| l.contains("order.database.url")).unwrap_or_default()
    );
}
