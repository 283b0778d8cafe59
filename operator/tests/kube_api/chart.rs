//! The whole Helm chart on a real API server: every object it renders is accepted by
//! `kubectl apply --server-side` with strict field validation and no warning — with the
//! defaults, and with values-dev.yaml (with servers as scripts/dev-servers.sh gives them)
//! plus a KEDA ScaledObject for the order service, against KEDA's own CRD — and is then
//! stored. The operator's ServiceAccount may scale exactly the chart's own order and
//! payment Deployments and read no Secret.
//!
//! Not rendered here: ServiceMonitor (monitoring.coreos.com) and HTTPRoute
//! (gateway.networking.k8s.io), whose CRDs this control plane does not have; both are
//! off by default and scripts/check_chart.py checks their fields by hand.

use std::process::Command;

use goodsmall_testkit::{repo_root, ControlPlane};

/// `scripts/render_chart.py` with these arguments: the YAML stream.
fn render(args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg(repo_root().join("scripts/render_chart.py"))
        .args(args)
        .output()
        .expect("python3 runs");
    assert!(out.status.success(), "rendering the chart ({args:?}) failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// `kind.group/name` of every object, as `kubectl … -o name` prints them.
fn names(kubectl_output: &str) -> Vec<String> {
    let mut names: Vec<String> =
        kubectl_output.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect();
    names.sort();
    names
}

/// Applies the chart's objects into `namespace`; every one must be accepted and stored.
fn install(plane: &ControlPlane, namespace: &str, release: &str, values: &[&str]) -> Vec<String> {
    let mut args = vec!["--namespace", namespace, "--release", release];
    args.extend_from_slice(values);
    let manifest = render(&args);
    // safe_dump writes each document's top-level keys at column 0.
    let documents = manifest.lines().filter(|l| l.starts_with("kind: ")).count();
    plane.kubectl_ok(&["create", "namespace", namespace], None);
    let applied = plane.kubectl_as(
        &plane.kubeconfig,
        &[
            "apply",
            "--server-side",
            "--field-manager=helm",
            "--validate=strict",
            "--warnings-as-errors",
            "-n",
            namespace,
            "-f",
            "-",
            "-o",
            "name",
        ],
        Some(&manifest),
    );
    assert!(
        applied.status.success(),
        "the API server refused part of the chart ({release} in {namespace}, {values:?}):\n{}",
        String::from_utf8_lossy(&applied.stderr)
    );
    let applied = names(&String::from_utf8_lossy(&applied.stdout));
    assert_eq!(applied.len(), documents, "every rendered object is applied: {applied:?}");
    let stored = names(&plane.kubectl_ok(&["get", "-n", namespace, "-f", "-", "-o", "name"], Some(&manifest)));
    assert_eq!(stored, applied, "every applied object is stored");
    applied
}

/// `kubectl auth can-i` as `namespace/account`: the answer.
fn can(plane: &ControlPlane, namespace: &str, account: &str, args: &[&str]) -> bool {
    let who = format!("--as=system:serviceaccount:{namespace}:{account}");
    let mut all = vec!["auth", "can-i", "-n", namespace, who.as_str()];
    all.extend_from_slice(args);
    let out = plane.kubectl(&all);
    match String::from_utf8_lossy(&out.stdout).trim() {
        "yes" => true,
        "no" => false,
        other => panic!("kubectl {all:?}: {other:?} {}", String::from_utf8_lossy(&out.stderr)),
    }
}

#[tokio::test]
async fn every_object_of_the_chart_is_accepted_by_a_real_api_server() {
    let plane = ControlPlane::start().await;
    for crd in [repo_root().join("helm/goodsmall/crds/flashsale.yaml"), plane.keda_crd()] {
        plane.kubectl_ok(&["apply", "--server-side", "-f", &crd.display().to_string()], None);
    }
    for crd in ["crd/flashsales.goodsmall.io", "crd/scaledobjects.keda.sh"] {
        plane.kubectl_ok(&["wait", "--for=condition=Established", crd, "--timeout=60s"], None);
    }

    // The production default: external servers, Secrets made by the SRE, HPAs.
    let defaults = install(&plane, "goodsmall-system", "goodsmall", &[]);
    for kind in [
        "deployment.apps/",
        "service/",
        "configmap/",
        "poddisruptionbudget.policy/",
        "networkpolicy.networking.k8s.io/",
        "serviceaccount/",
    ] {
        for component in ["user", "product", "order", "payment", "operator"] {
            let name = format!("{kind}goodsmall-{component}");
            assert!(defaults.contains(&name), "{name} is installed: {defaults:?}");
        }
    }
    for name in [
        "horizontalpodautoscaler.autoscaling/goodsmall-order",
        "horizontalpodautoscaler.autoscaling/goodsmall-payment",
        "ingress.networking.k8s.io/goodsmall-api",
    ] {
        assert!(defaults.contains(&name.to_owned()), "{name} is installed: {defaults:?}");
    }

    // A trial install under another release name: values-dev.yaml with the servers
    // scripts/dev-servers.sh writes, inline keys, and KEDA for the order service (its HPA
    // gives way to the ScaledObject).
    let dev_servers_and_keda = r#"{"order":{"autoscaling":{"keda":{"enabled":true}}},
        "mysql":{"existingSecret":"","createIfMissing":true,"urls":{"user":"mysql://root@10.88.0.1:33061/u",
        "product":"mysql://root@10.88.0.1:33061/p",
        "order":"mysql://root@10.88.0.1:33061/o","payment":"mysql://root@10.88.0.1:33061/pay"}},
        "redis":{"existingSecret":"","url":"redis://10.88.0.1:6380/0"},"kafka":{"brokers":"10.88.0.1:9093"}}"#;
    let dev = install(&plane, "goodsmall-dev", "shop", &["-f", "values-dev.yaml", "--set-json", dev_servers_and_keda]);
    assert!(
        !dev.iter().any(|name| name.starts_with("statefulset")),
        "the chart deploys no servers of its own: {dev:?}"
    );
    for name in [
        "scaledobject.keda.sh/shop-goodsmall-order",
        "horizontalpodautoscaler.autoscaling/shop-goodsmall-payment",
        "secret/shop-goodsmall-token-keys",
        "secret/shop-goodsmall-internal-keys",
    ] {
        assert!(dev.contains(&name.to_owned()), "{name} is installed: {dev:?}");
    }
    assert!(
        !dev.contains(&"horizontalpodautoscaler.autoscaling/shop-goodsmall-order".to_owned()),
        "KEDA, not an HPA, scales order"
    );

    // The operator's RBAC names the chart's own Deployments, in each release.
    for (namespace, prefix) in [("goodsmall-system", "goodsmall"), ("goodsmall-dev", "shop-goodsmall")] {
        let operator = format!("{prefix}-operator");
        for workload in ["order", "payment"] {
            let deployment = format!("deployments.apps/{prefix}-{workload}");
            assert!(
                can(&plane, namespace, &operator, &["patch", &deployment, "--subresource=scale"]),
                "{operator} scales {deployment}"
            );
            assert!(can(&plane, namespace, &operator, &["get", &deployment]), "{operator} reads {deployment}");
        }
        let user = format!("deployments.apps/{prefix}-user");
        assert!(
            !can(&plane, namespace, &operator, &["patch", &user, "--subresource=scale"]),
            "{operator} may not scale {user}"
        );
        assert!(
            can(&plane, namespace, &operator, &["patch", "horizontalpodautoscalers.autoscaling"]),
            "{operator} raises an HPA's minimum"
        );
        assert!(
            can(&plane, namespace, &operator, &["patch", "scaledobjects.keda.sh"]),
            "{operator} raises a ScaledObject's minimum"
        );
        for autoscalers in ["horizontalpodautoscalers.autoscaling", "scaledobjects.keda.sh"] {
            assert!(
                can(&plane, namespace, &operator, &["watch", autoscalers]),
                "{operator} follows {autoscalers} to keep their minimum"
            );
        }
        assert!(!can(&plane, namespace, &operator, &["get", "secrets"]), "{operator} reads no Secret");
        for service in ["user", "product", "order", "payment"] {
            let account = format!("{prefix}-{service}");
            assert!(!can(&plane, namespace, &account, &["list", "pods"]), "{account} has no API access");
        }
    }
}
