//! Where an autoscaler owns the replica count, the warm-up raises its minimum instead:
//! the chart's autoscaling/v2 HPA's `minReplicas` (never above its `maxReplicas`), or,
//! with KEDA's own CRD installed, the chart's ScaledObject's `minReplicaCount`; both go
//! back after the close.

use std::time::{Duration, Instant};

use crate::{
    cluster::{render_chart_with, Cluster, NAMESPACE, PATIENCE},
    drop::manifest,
};

/// The chart's autoscalers for order and payment: its HPAs (order's maximum 3, below the
/// warm-up's 4) or, with `keda`, its ScaledObjects (the chart's maximum, 10).
fn autoscalers(keda: bool) -> String {
    let order_max = if keda { 10 } else { 3 };
    let values = format!(
        r#"{{"order": {{"autoscaling": {{"minReplicas": 2, "maxReplicas": {order_max}, "keda": {{"enabled": {keda}}}}}}}, "payment": {{"autoscaling": {{"minReplicas": 1, "keda": {{"enabled": {keda}}}}}}}}}"#
    );
    render_chart_with(if keda { "ScaledObject" } else { "HorizontalPodAutoscaler" }, &values)
}

/// `jsonpath` of object `kind/name` in the release namespace, as an integer.
fn field(cluster: &Cluster, object: &str, path: &str) -> i64 {
    let out = cluster.plane.kubectl_ok(&["get", object, "-n", NAMESPACE, "-o", &format!("jsonpath={{{path}}}")], None);
    out.trim().parse().unwrap_or_else(|_| panic!("{object} {path}: {out:?}"))
}

async fn field_reaches(cluster: &Cluster, object: &str, path: &str, want: i64) {
    let started = Instant::now();
    while field(cluster, object, path) != want {
        assert!(started.elapsed() < PATIENCE, "{object} {path} never reached {want} (is {})", field(cluster, object, path));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_warm_up_raises_an_hpas_or_a_scaled_objects_minimum_and_gives_it_back() {
    let cluster = Cluster::start().await;
    let mut operator = cluster.operator("operator-0");
    operator.start(&cluster.client).await;
    let product = cluster.product_of(11).await;

    // HPAs: the order one's maximum (3) is below the warm-up's 4.
    let hpas = autoscalers(false);
    assert_eq!(hpas.matches("kind: HorizontalPodAutoscaler").count(), 2, "{hpas}");
    cluster.plane.kubectl_ok(&["apply", "-n", NAMESPACE, "-f", "-"], Some(&hpas));
    cluster.plane.kubectl_ok(&["apply", "-f", "-"], Some(&manifest("hpa-drop", product, 5, Duration::from_secs(3), Duration::from_secs(6), "2s")));
    field_reaches(&cluster, "hpa/goodsmall-order", ".spec.minReplicas", 3).await;
    field_reaches(&cluster, "hpa/goodsmall-payment", ".spec.minReplicas", 3).await;
    assert_eq!(cluster.replicas("goodsmall-order"), 1, "the HPA, not the operator, owns the Deployment's replicas");
    cluster.flash_sale_until("hpa-drop", "Closed", |fs| fs["status"]["phase"] == "Closed").await;
    field_reaches(&cluster, "hpa/goodsmall-order", ".spec.minReplicas", 2).await;
    field_reaches(&cluster, "hpa/goodsmall-payment", ".spec.minReplicas", 1).await;

    // KEDA: its CRD installed, ScaledObjects on both Deployments (they win over HPAs).
    cluster.plane.kubectl_ok(&["delete", "hpa", "goodsmall-order", "goodsmall-payment", "-n", NAMESPACE], None);
    cluster.plane.kubectl_ok(&["apply", "--server-side", "-f", &cluster.plane.keda_crd().display().to_string()], None);
    cluster.plane.kubectl_ok(&["wait", "--for=condition=Established", "crd/scaledobjects.keda.sh", "--timeout=60s"], None);
    let objects = autoscalers(true);
    assert_eq!(objects.matches("kind: ScaledObject").count(), 2, "{objects}");
    cluster.plane.kubectl_ok(&["apply", "-n", NAMESPACE, "-f", "-"], Some(&objects));
    cluster.plane.kubectl_ok(&["apply", "-f", "-"], Some(&manifest("keda-drop", product, 5, Duration::from_secs(3), Duration::from_secs(6), "2s")));
    field_reaches(&cluster, "scaledobject/goodsmall-order", ".spec.minReplicaCount", 4).await;
    field_reaches(&cluster, "scaledobject/goodsmall-payment", ".spec.minReplicaCount", 3).await;
    cluster.flash_sale_until("keda-drop", "Closed", |fs| fs["status"]["phase"] == "Closed").await;
    field_reaches(&cluster, "scaledobject/goodsmall-order", ".spec.minReplicaCount", 2).await;
    field_reaches(&cluster, "scaledobject/goodsmall-payment", ".spec.minReplicaCount", 1).await;
    assert_eq!(cluster.replicas("goodsmall-order"), 1, "KEDA, not the operator, owns the Deployment's replicas");
}
