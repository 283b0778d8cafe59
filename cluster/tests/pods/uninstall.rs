//! values-dev.yaml installs and runs; `helm uninstall` with a FlashSale still present ends cleanly (the operator pods
//! stop without an error, nothing of the release is left but the FlashSale, whose
//! finalizer the operator removed at the close), and a reinstall works.

use std::time::Duration;

use crate::release::Release;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uninstall_with_a_flash_sale_present_ends_cleanly_and_a_reinstall_works() {
    // values-dev.yaml as a newcomer installs it (with this run's servers, as
    // scripts/dev-servers.sh gives them): it must run here.
    let (release, product) = Release::with_product("pods-uninstall", &["-f", "helm/goodsmall/values-dev.yaml"]).await;
    let manifest = release.flash_sale_manifest(
        "kept",
        product,
        5,
        Duration::from_secs(3600),
        Duration::from_secs(600),
        "10m",
        None,
    );
    release.kubectl_ok(&["apply", "-f", "-"], Some(&manifest));
    release.flash_sale_until("kept", "Scheduled", Duration::from_secs(60), |fs| fs["status"]["phase"] == "Scheduled");

    // Follow the operator pods to their end: each must exit 0.
    let pods = release.kubectl_ok(
        &["get", "pods", "-l", "app.kubernetes.io/component=operator", "-o", "jsonpath={.items[*].metadata.name}"],
        None,
    );
    let watch = {
        let kubeconfig = release.node.kubeconfig.clone();
        let kubectl = release.node.bin.join("kubectl");
        let namespace = release.namespace.clone();
        std::process::Command::new(kubectl)
            .env("KUBECONFIG", kubeconfig)
            .args([
                "get",
                "pods",
                "-n",
                &namespace,
                "-l",
                "app.kubernetes.io/component=operator",
                "-w",
                "-o",
                "jsonpath={.metadata.name} {.status.containerStatuses[0].state.terminated.reason} \
                    {.status.containerStatuses[0].state.terminated.exitCode}{\"\\n\"}",
            ])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let out = release.node.helm(&["uninstall", &release.name, "-n", &release.namespace, "--wait", "--timeout", "120s"]);
    assert!(
        out.status.success(),
        "helm uninstall: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Pods go after their Deployments, each after its drain (preStop sleep, SIGTERM).
    release.wait_for("every pod of the release is gone", Duration::from_secs(90), || {
        release.kubectl_ok(&["get", "pods", "-o", "name"], None).trim().is_empty().then_some(())
    });
    let mut watch = watch;
    let _ = watch.kill();
    let seen = String::from_utf8_lossy(&watch.wait_with_output().unwrap().stdout).into_owned();
    for pod in pods.split_whitespace() {
        let ends: Vec<&str> =
            seen.lines().filter(|l| l.starts_with(pod) && l.split_whitespace().count() == 3).collect();
        assert!(!ends.is_empty(), "{pod}'s end was not seen: {seen}");
        assert!(ends.iter().all(|l| l.ends_with(" Completed 0")), "{pod} did not exit cleanly: {ends:?}");
    }
    // Nothing of the release is left but the FlashSale (its finalizer is gone with the operator: it can be deleted).
    let left = release.kubectl_ok(
        &["get", "all,configmap,secret,lease,role,rolebinding,serviceaccount,networkpolicy,pdb,hpa", "-o", "name"],
        None,
    );
    let left: Vec<&str> =
        left.lines().filter(|l| !l.contains("kube-root-ca.crt") && !l.starts_with("serviceaccount/default")).collect();
    assert!(left.is_empty(), "left behind by helm uninstall: {left:?}");
    let fs = release.flash_sale("kept");
    eprintln!("after uninstall, the FlashSale's finalizers: {}", fs["metadata"]["finalizers"]);

    // A reinstall into the same namespace picks the FlashSale up again.
    release.helm_ok(&["install"], &[]);
    release.flash_sale_until("kept", "Scheduled again", Duration::from_secs(90), |fs| {
        fs["status"]["phase"] == "Scheduled"
    });
    release.kubectl_ok(&["delete", "fs", "kept", "--timeout=60s"], None);
}
