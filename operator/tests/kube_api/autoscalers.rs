//! Where an autoscaler owns the replica count, the warm-up raises its minimum instead:
//! the chart's autoscaling/v2 HPA's `minReplicas` (never above its `maxReplicas`), or,
//! with KEDA's own CRD installed, the chart's ScaledObject's `minReplicaCount`; both go
//! back after the close. The chart writes the minimum only as the
//! `goodsmall.io/min-replicas` annotation, which the operator applies: a server-side
//! apply of the chart (what `helm upgrade` does) never conflicts with the operator, even
//! mid-drop, and its new minimum holds at once.

use std::time::{Duration, Instant};

use crate::{
    cluster::{render_chart_with, Cluster, NAMESPACE, PATIENCE},
    drop::manifest,
};

/// How long the drops stay open: long enough for the checks made while they are (a few
/// `kubectl` calls, seconds each on a busy machine) to see the raised minimums.
const MID_DROP: Duration = Duration::from_secs(20);

/// The chart's autoscalers for order and payment: its HPAs (order's maximum 3, below the
/// warm-up's 4) or, with `keda`, its ScaledObjects (the chart's maximum, 10).
fn autoscalers(keda: bool, order_min: i64, payment_min: i64) -> String {
    let order_max = if keda { 10 } else { 3 };
    let values = serde_json::json!({
        "order": { "autoscaling": { "minReplicas": order_min, "maxReplicas": order_max, "keda": { "enabled": keda } } },
        "payment": { "autoscaling": { "minReplicas": payment_min, "keda": { "enabled": keda } } },
    })
    .to_string();
    render_chart_with(if keda { "ScaledObject" } else { "HorizontalPodAutoscaler" }, &values)
}

/// `jsonpath` of object `kind/name` in the release namespace, as an integer; `None`
/// while the field is absent (a ScaledObject's minimum until the operator writes it:
/// the chart leaves it out, and a custom resource has no default).
fn field(cluster: &Cluster, object: &str, path: &str) -> Option<i64> {
    let out = cluster.plane.kubectl_ok(&["get", object, "-n", NAMESPACE, "-o", &format!("jsonpath={{{path}}}")], None);
    let out = out.trim();
    (!out.is_empty()).then(|| out.parse().unwrap_or_else(|_| panic!("{object} {path}: {out:?}")))
}

async fn field_reaches(cluster: &Cluster, object: &str, path: &str, want: i64) {
    let started = Instant::now();
    while field(cluster, object, path) != Some(want) {
        assert!(
            started.elapsed() < PATIENCE,
            "{object} {path} never reached {want} (is {:?})",
            field(cluster, object, path)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_warm_up_raises_an_hpas_or_a_scaled_objects_minimum_and_gives_it_back() {
    let cluster = Cluster::start().await;
    let mut operator = cluster.operator("operator-0");
    operator.start(&cluster.client).await;
    let product = cluster.product_of(11).await;

    // HPAs: the order one's maximum (3) is below the warm-up's 4. Applied as Helm v4
    // does (server-side, its own field manager); the API's default minimum (1) is what
    // they start with, the operator puts the chart's floor in its place.
    let helm_apply = |manifests: &str| {
        cluster.plane.kubectl_ok(
            &["apply", "--server-side", "--field-manager=helm", "-n", NAMESPACE, "-f", "-"],
            Some(manifests),
        )
    };
    let hpas = autoscalers(false, 2, 1);
    assert_eq!(hpas.matches("kind: HorizontalPodAutoscaler").count(), 2, "{hpas}");
    assert!(!hpas.contains("minReplicas"), "the chart leaves the minimum to the operator:\n{hpas}");
    helm_apply(&hpas);
    field_reaches(&cluster, "hpa/goodsmall-order", ".spec.minReplicas", 2).await;
    field_reaches(&cluster, "hpa/goodsmall-payment", ".spec.minReplicas", 1).await;
    cluster.plane.kubectl_ok(
        &["apply", "-f", "-"],
        Some(&manifest("hpa-drop", product, 5, Duration::from_secs(3), MID_DROP, "2s")),
    );
    field_reaches(&cluster, "hpa/goodsmall-order", ".spec.minReplicas", 3).await;
    field_reaches(&cluster, "hpa/goodsmall-payment", ".spec.minReplicas", 3).await;
    assert_eq!(cluster.replicas("goodsmall-order"), 1, "the HPA, not the operator, owns the Deployment's replicas");
    // An upgrade mid-drop raising the floors: no conflict, the claims still rule ...
    helm_apply(&autoscalers(false, 3, 2));
    assert_eq!(
        (
            field(&cluster, "hpa/goodsmall-order", ".spec.minReplicas"),
            field(&cluster, "hpa/goodsmall-payment", ".spec.minReplicas")
        ),
        (Some(3), Some(3))
    );
    cluster.flash_sale_until("hpa-drop", "Closed", |fs| fs["status"]["phase"] == "Closed").await;
    // ... and the close returns to the new floors.
    field_reaches(&cluster, "hpa/goodsmall-order", ".spec.minReplicas", 3).await;
    field_reaches(&cluster, "hpa/goodsmall-payment", ".spec.minReplicas", 2).await;
    // A hand edit of the field, outside any drop, is put back.
    cluster.plane.kubectl_ok(
        &["patch", "hpa/goodsmall-payment", "-n", NAMESPACE, "--type=merge", "-p", r#"{"spec":{"minReplicas":1}}"#],
        None,
    );
    field_reaches(&cluster, "hpa/goodsmall-payment", ".spec.minReplicas", 2).await;

    // KEDA: its CRD installed, ScaledObjects on both Deployments (they win over HPAs).
    cluster.plane.kubectl_ok(&["delete", "hpa", "goodsmall-order", "goodsmall-payment", "-n", NAMESPACE], None);
    cluster.plane.kubectl_ok(&["apply", "--server-side", "-f", &cluster.plane.keda_crd().display().to_string()], None);
    cluster
        .plane
        .kubectl_ok(&["wait", "--for=condition=Established", "crd/scaledobjects.keda.sh", "--timeout=60s"], None);
    let objects = autoscalers(true, 2, 1);
    assert_eq!(objects.matches("kind: ScaledObject").count(), 2, "{objects}");
    helm_apply(&objects);
    cluster.plane.kubectl_ok(
        &["apply", "-f", "-"],
        Some(&manifest("keda-drop", product, 5, Duration::from_secs(3), MID_DROP, "2s")),
    );
    field_reaches(&cluster, "scaledobject/goodsmall-order", ".spec.minReplicaCount", 4).await;
    field_reaches(&cluster, "scaledobject/goodsmall-payment", ".spec.minReplicaCount", 3).await;
    cluster.flash_sale_until("keda-drop", "Closed", |fs| fs["status"]["phase"] == "Closed").await;
    field_reaches(&cluster, "scaledobject/goodsmall-order", ".spec.minReplicaCount", 2).await;
    field_reaches(&cluster, "scaledobject/goodsmall-payment", ".spec.minReplicaCount", 1).await;
    assert_eq!(cluster.replicas("goodsmall-order"), 1, "KEDA, not the operator, owns the Deployment's replicas");
}
