//! `helm install --wait`, then `helm test`: what an SRE does first.

use std::time::Duration;

use serde_json::Value;

use crate::release::Release;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chart_installs_with_every_deployment_available_and_helm_test_passes() {
    let release = Release::install("pods-install", &[]).await;
    eprintln!("helm install --wait: {:.1?}", release.installed_in);
    for component in ["user", "product", "order", "payment", "operator"] {
        let deployment = release.get(&format!("deploy/goodsmall-{component}"));
        let available = deployment["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Available" && c["status"] == "True");
        assert!(available, "goodsmall-{component} is not Available: {}", deployment["status"]);
    }

    // Test hooks: a pod of the release asks every component's /readyz through its Service.
    let tested = release.node.helm(&["test", &release.name, "-n", &release.namespace, "--logs", "--timeout", "120s"]);
    let output = format!("{}{}", String::from_utf8_lossy(&tested.stdout), String::from_utf8_lossy(&tested.stderr));
    assert!(tested.status.success(), "helm test failed: {output}\n{}", release.diagnose());
    for component in ["user", "product", "order", "payment", "operator"] {
        assert!(
            output.contains(&format!("goodsmall-{component}:8080/readyz: 200 OK")),
            "helm test did not ask {component}: {output}"
        );
    }

    // One log format for every component: the chart's `log.format` (json).
    for component in ["user", "operator"] {
        let logs = release.kubectl_ok(&["logs", &format!("deploy/goodsmall-{component}"), "--tail=20"], None);
        let lines: Vec<&str> = logs.lines().filter(|l| !l.trim().is_empty()).collect();
        assert!(!lines.is_empty(), "goodsmall-{component} logged nothing");
        for line in lines {
            assert!(
                serde_json::from_str::<Value>(line).is_ok(),
                "goodsmall-{component} logs a line that is not JSON: {line}"
            );
        }
    }

    // Integers render as integers (Helm keeps numbers as floats: 2592000 was `2.592e+06`).
    let config = release.get("configmap/goodsmall-user");
    assert_eq!(config["data"]["GOODSMALL_USER__TOKENS__REFRESH_TTL_SECS"], "2592000", "{}", config["data"]);

    // The leader holds the Lease; with two operator replicas exactly one leads.
    let lease = release.wait_for("a leader holds the Lease", Duration::from_secs(60), || {
        let lease = release.get("lease/goodsmall-operator");
        let held = lease["spec"]["holderIdentity"].as_str().is_some_and(|h| !h.is_empty());
        held.then_some(lease)
    });
    let owners: Vec<&str> = lease["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| o["name"].as_str())
        .collect();
    assert_eq!(owners.len(), 2, "both operator pods own the Lease (it goes with the last): {}", lease["metadata"]);
}
