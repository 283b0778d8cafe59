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
    ];
    for (name, spec, message) in cases {
        let (ok, out) = apply_spec(&plane, name, &spec);
        assert!(!ok, "{name} was accepted: {out}");
        assert!(out.contains(message), "{name}: the server's answer names `{message}`: {out}");
    }
    let listed = plane.kubectl_ok(&["get", "fs", "-o", "name"], None);
    assert_eq!(listed.lines().count(), 3, "only the valid ones were stored: {listed}");
}
