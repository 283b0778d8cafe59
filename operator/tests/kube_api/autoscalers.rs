//! Where an autoscaler owns the replica count, the warm-up raises its minimum instead:
//! an autoscaling/v2 HPA's `minReplicas` (never above its `maxReplicas`), or, with KEDA's
//! own CRD installed, a ScaledObject's `minReplicaCount`; both go back after the close.

use std::time::{Duration, Instant};

use crate::{
    cluster::{Cluster, NAMESPACE, PATIENCE},
    drop::manifest,
};

fn hpa(deployment: &str, min: i64, max: i64) -> String {
    format!(
        "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: {deployment}\nspec:\n  scaleTargetRef:\n    apiVersion: apps/v1\n    \
         kind: Deployment\n    name: {deployment}\n  minReplicas: {min}\n  maxReplicas: {max}\n  metrics:\n  - type: Resource\n    resource:\n      \
         name: cpu\n      target:\n        type: Utilization\n        averageUtilization: 70\n"
    )
}

fn scaled_object(deployment: &str, min: i64) -> String {
    format!(
        "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata:\n  name: {deployment}\nspec:\n  scaleTargetRef:\n    name: {deployment}\n  \
         minReplicaCount: {min}\n  maxReplicaCount: 20\n  triggers:\n  - type: cpu\n    metricType: Utilization\n    metadata:\n      value: \"70\"\n"
    )
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
    let hpas = [hpa("goodsmall-order", 2, 3), hpa("goodsmall-payment", 1, 10)].join("---\n");
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
    let objects = [scaled_object("goodsmall-order", 1), scaled_object("goodsmall-payment", 1)].join("---\n");
    cluster.plane.kubectl_ok(&["apply", "-n", NAMESPACE, "-f", "-"], Some(&objects));
    cluster.plane.kubectl_ok(&["apply", "-f", "-"], Some(&manifest("keda-drop", product, 5, Duration::from_secs(3), Duration::from_secs(6), "2s")));
    field_reaches(&cluster, "scaledobject/goodsmall-order", ".spec.minReplicaCount", 4).await;
    field_reaches(&cluster, "scaledobject/goodsmall-payment", ".spec.minReplicaCount", 3).await;
    cluster.flash_sale_until("keda-drop", "Closed", |fs| fs["status"]["phase"] == "Closed").await;
    field_reaches(&cluster, "scaledobject/goodsmall-order", ".spec.minReplicaCount", 1).await;
    field_reaches(&cluster, "scaledobject/goodsmall-payment", ".spec.minReplicaCount", 1).await;
    assert_eq!(cluster.replicas("goodsmall-order"), 1, "KEDA, not the operator, owns the Deployment's replicas");
}
