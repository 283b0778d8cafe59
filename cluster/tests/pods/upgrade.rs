//! Upgrades while a drop is open, as an SRE does them (README "Upgrade"): the CRD first
//! (`kubectl apply --server-side`; helm never upgrades `crds/`), then a plain
//! `helm upgrade --wait`. From the previous release of the chart and images (the commit
//! pinned in cluster/previous-release, built by scripts/previous-release.sh) to this
//! checkout's: the operator replaced, every service rolled, shoppers buying all along —
//! no 5xx, no lost order, no oversell, and the warm-up's capacity kept.

use std::{
    path::PathBuf,
    process::{Command, Stdio},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use goodsmall_testkit::{repo_root, Node};

use crate::{
    release::Release,
    shoppers::{self, counters},
};

/// Enough for about 20 purchases a second through two rollouts.
const STOCK: i64 = 5_000;

/// The previous release's chart folder and image tag, its images in the node's
/// containerd beside this checkout's.
fn previous_release(node: &Node) -> (String, String) {
    let started = Instant::now();
    let out = Command::new(repo_root().join("scripts/previous-release.sh"))
        .current_dir(repo_root())
        .stderr(Stdio::inherit())
        .output()
        .expect("bash runs");
    assert!(out.status.success(), "scripts/previous-release.sh failed (its output is above)");
    let dir = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    let tag = std::fs::read_to_string(dir.join("tag")).expect("the previous release's tag").trim().to_owned();
    node.import_archives(&dir.join("images"), &tag);
    eprintln!("previous release {tag} ready and imported in {:.1?}", started.elapsed());
    (dir.join("src/helm/goodsmall").display().to_string(), tag)
}

/// The images the release's pods run, one line per pod: `pod image…`.
fn pod_images(release: &Release) -> Vec<(String, String)> {
    let out = release.kubectl_ok(
        &["get", "pods", "-o", r#"jsonpath={range .items[*]}{.metadata.name} {.spec.containers[*].image}{"\n"}{end}"#],
        None,
    );
    out.lines().filter_map(|l| l.split_once(' ')).map(|(pod, images)| (pod.to_owned(), images.to_owned())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_from_the_previous_release_during_an_open_drop_loses_no_purchase() {
    let node = Node::get();
    let (chart, tag) = previous_release(&node);
    let install_tag = format!("global.image.tag={tag}");
    let release = Release::install_chart("pods-prev", &chart, &["--set", &install_tag], &[]).await;
    // This checkout's images, for the upgrade.
    release.node.import_images();
    let (release, product) = Release::product_on(release).await;
    let release = Arc::new(release);
    let before = pod_images(&release);
    assert!(
        before.iter().all(|(_, images)| images.ends_with(&format!(":{tag}"))),
        "the previous release runs its own images: {before:?}"
    );

    // A drop warmed up with 2 order and payment pods, open for 15 minutes.
    let manifest = release.flash_sale_manifest(
        "drop",
        product,
        STOCK,
        Duration::from_secs(25),
        Duration::from_secs(900),
        "20s",
        Some(2),
    );
    release.kubectl_ok(&["apply", "-f", "-"], Some(&manifest));
    let open = release.flash_sale_until("drop", "Open", Duration::from_secs(90), |fs| fs["status"]["phase"] == "Open");
    let sale = open["status"]["saleId"].as_i64().unwrap();
    let going = Arc::new(AtomicBool::new(true));
    let buying = {
        let (release, going) = (release.clone(), going.clone());
        tokio::spawn(
            async move { shoppers::buy_while(&release, sale, 5_000, 2, Duration::from_millis(100), going).await },
        )
    };
    shoppers::taken(&release, sale, 30, STOCK).await;

    // The upgrade: the CRD, then the chart (this checkout's, with its own images).
    let started = Instant::now();
    let crd = repo_root().join("helm/goodsmall/crds/flashsale.yaml").display().to_string();
    release.node.kubectl_ok(&["apply", "--server-side", "--force-conflicts", "-f", &crd], None);
    let upgrading = {
        let release = release.clone();
        tokio::task::spawn_blocking(move || {
            let current = repo_root().join("helm/goodsmall").display().to_string();
            release.helm_ok_with_chart(&current, &["upgrade"], &[])
        })
    };
    upgrading.await.unwrap();
    let upgraded = started.elapsed();
    let version = env!("CARGO_PKG_VERSION");
    release.wait_for(
        "every pod of the previous release gone, every pod on this release's images",
        Duration::from_secs(120),
        || {
            let now = pod_images(&release);
            let old_gone = before.iter().all(|(old, _)| !now.iter().any(|(pod, _)| pod == old));
            (old_gone && now.iter().all(|(_, images)| images.ends_with(&format!(":{version}")))).then_some(())
        },
    );
    let rolled = started.elapsed();
    // The new operator leads and kept the warm-up's claim: both minimums still 2.
    let leader =
        release.get("lease/goodsmall-operator")["spec"]["holderIdentity"].as_str().unwrap_or_default().to_owned();
    assert!(pod_images(&release).iter().any(|(pod, _)| *pod == leader), "a new operator pod leads: {leader:?}");
    for hpa in ["hpa/goodsmall-order", "hpa/goodsmall-payment"] {
        let hpa = release.wait_for("the HPA's minimum is the warm-up's claim", Duration::from_secs(30), || {
            let hpa = release.get(hpa);
            (hpa["spec"]["minReplicas"] == 2).then_some(hpa)
        });
        let annotations = &hpa["metadata"]["annotations"];
        assert_eq!(
            (annotations["goodsmall.io/min-replicas"].as_str(), annotations.get("goodsmall.io/baseline-replicas")),
            (Some("1"), None),
            "{hpa}"
        );
    }
    let taken_before_the_end = counters(&release, sale, STOCK).await;
    going.store(false, Ordering::SeqCst);
    let crowd = buying.await.unwrap();
    eprintln!(
        "the CRD and helm upgrade --wait took {upgraded:.1?}, every pod on the new images after {rolled:.1?}; \
         {} purchases in all, counters then (remaining, reserved, sold) {taken_before_the_end:?}; {} × 5xx, \
         {} connection errors (retried), longest purchase {:.1?}",
        crowd.accepted.len(),
        crowd.server_errors,
        crowd.connection_errors,
        crowd.longest
    );
    assert!(taken_before_the_end.0 > 0, "the stock must outlast the upgrade: {taken_before_the_end:?}");
    let sold = shoppers::served_through(&release, sale, STOCK, &crowd, "the upgrade").await;
    // The new operator still drives the drop: its status follows the stock.
    release.flash_sale_until("drop", "the status counts every sale", Duration::from_secs(30), |fs| {
        fs["status"]["sold"] == sold
    });
}
