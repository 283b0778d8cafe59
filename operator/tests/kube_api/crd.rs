//! `crds/flashsale.yaml` and `examples/` apply; invalid manifests are refused by the
//! server with the CRD's own messages.

use goodsmall_testkit::{repo_root, ControlPlane};

/// `kubectl apply` of a manifest with `spec` replaced by `patch` applied to the
/// minimal example: the server's answer (ok, stdout + stderr).
fn apply_spec(plane: &ControlPlane, name: &str, spec: &str) -> (bool, String) {
    let manifest =
        format!("apiVersion: goodsmall.io/v1alpha1\nkind: FlashSale\nmetadata:\n  name: {name}\nspec:\n{spec}");
    let out = plane.kubectl_as(&plane.kubeconfig, &["apply", "-f", "-"], Some(&manifest));
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

const VALID: &str = "  productId: 1\n  stock: 10\n  price: \"9.90\"\n  opensAt: 2030-01-01T10:00:00Z\n  closesAt: \
    2030-01-01T11:00:00Z\n  perUserLimit: 1\n";

#[tokio::test]
async fn the_crd_and_the_examples_apply_and_bad_manifests_get_the_crds_messages() {
    let plane = ControlPlane::start().await;
    plane.kubectl_ok(&["apply", "-f", &repo_root().join("crds/flashsale.yaml").display().to_string()], None);
    plane.kubectl_ok(&["wait", "--for=condition=Established", "crd/flashsales.goodsmall.io", "--timeout=60s"], None);
    for example in ["examples/flashsale.yaml", "examples/flashsale-minimal.yaml"] {
        let out = plane.kubectl_ok(&["apply", "-f", &repo_root().join(example).display().to_string()], None);
        assert!(out.contains("created"), "{example}: {out}");
    }
    let listed = plane.kubectl_ok(&["get", "fs", "-o", "name"], None);
    assert_eq!(listed.lines().count(), 2, "both examples stored: {listed}");

    let (ok, out) = apply_spec(&plane, "valid", VALID);
    assert!(ok, "{out}");
    let cases = [
        (
            "closes-first",
            VALID.replace("closesAt: 2030-01-01T11:00:00Z", "closesAt: 2030-01-01T09:00:00Z"),
            "closesAt must be after opensAt",
        ),
        ("no-stock", VALID.replace("stock: 10", "stock: 0"), "spec.stock"),
        ("bad-price", VALID.replace("price: \"9.90\"", "price: \"abc\""), "spec.price"),
        ("zero-price", VALID.replace("price: \"9.90\"", "price: \"0.00\""), "price must be greater than zero"),
        ("no-limit", VALID.replace("perUserLimit: 1", "perUserLimit: 0"), "spec.perUserLimit"),
        // The waiting room: the durations are checked by CEL's duration(), and the
        // pre-queue against the warm-up lead (10m by default, or the spec's).
        (
            "pre-queue-beyond-lead",
            queued("11m", "", "2m"),
            "spec.admission.preQueue: Invalid value: must not be longer than warmup.lead",
        ),
        (
            "pre-queue-beyond-own-lead",
            format!("{}  warmup:\n    lead: 5m\n", queued("6m", "", "2m")),
            "must not be longer than warmup.lead",
        ),
        (
            "pre-queue-beyond-a-day",
            format!("{}  warmup:\n    lead: 30h\n", queued("25h", "", "2m")),
            "must be at most 24h",
        ),
        ("short-turn", queued("10m", "", "9s"), "must be between 10s and 1h"),
        ("long-turn", queued("10m", "", "61m"), "must be between 10s and 1h"),
        ("no-rate", queued("10m", "    admitPerSecond: 0\n", "2m"), "spec.admission.admitPerSecond"),
        ("fast-rate", queued("10m", "    admitPerSecond: 10001\n", "2m"), "spec.admission.admitPerSecond"),
        ("bad-duration", queued("soon", "", "2m"), "spec.admission.preQueue"),
        ("bad-mode", queued("10m", "", "2m").replace("mode: Queue", "mode: Lottery"), "spec.admission.mode"),
    ];
    for (name, spec, message) in cases {
        let (ok, out) = apply_spec(&plane, name, &spec);
        assert!(!ok, "{name} was accepted: {out}");
        assert!(out.contains(message), "{name}: the server's answer names `{message}`: {out}");
    }
    for (name, spec) in [
        ("queued", queued("10m", "", "2m")),
        ("queued-at-opening", queued("0s", "    admitPerSecond: 10000\n", "1h")),
        ("queued-long", format!("{}  warmup:\n    lead: 30h\n", queued("24h", "    admitPerSecond: 1\n", "10s"))),
    ] {
        let (ok, out) = apply_spec(&plane, name, &spec);
        assert!(ok, "{name}: {out}");
    }
    let listed = plane.kubectl_ok(&["get", "fs", "-o", "name"], None);
    assert_eq!(listed.lines().count(), 6, "only the valid ones were stored: {listed}");
    let columns = plane.kubectl_ok(&["get", "fs", "queued"], None);
    assert!(columns.lines().next().is_some_and(|h| h.contains("WAITING")), "the Waiting column: {columns}");
}

/// The valid spec with a waiting room (`rate`: an `admitPerSecond` line or nothing).
fn queued(pre_queue: &str, rate: &str, turn_ttl: &str) -> String {
    format!("{VALID}  admission:\n    mode: Queue\n    preQueue: {pre_queue}\n{rate}    turnTTL: {turn_ttl}\n")
}
