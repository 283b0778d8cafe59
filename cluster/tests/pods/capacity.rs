//! Capacity truth on a real node: the `Scaled` condition turns True only when the
//! warm-up's pods are Ready. A warm-up that cannot be satisfied (the node's CPU taken,
//! so the new pods stay Pending) still opens the sale on time, with a `CapacityNotReady`
//! Warning Event, the `goodsmall_operator_warmup_replicas` gauge showing the shortfall
//! and the `GoodsmallCapacityNotReady` alert's expression firing in a real Prometheus;
//! once the CPU is given back the pods start and the condition turns True (the operator
//! watches the Deployments).

use std::time::{Duration, Instant};

use goodsmall_testkit::prometheus::Prometheus;
use serde_json::Value;

use crate::release::Release;

/// The `expr` of an alert in grafana/alerts/goodsmall.rules.yaml (a `|` block).
fn alert_expr(alert: &str) -> String {
    let rules =
        std::fs::read_to_string(goodsmall_testkit::repo_root().join("grafana/alerts/goodsmall.rules.yaml")).unwrap();
    let start = rules.find(&format!("alert: {alert}")).unwrap_or_else(|| panic!("no alert {alert}"));
    let block = &rules[start..];
    let expr = &block[block.find("expr: |").expect("a block expr") + "expr: |".len()..];
    expr.lines()
        .skip(1)
        .take_while(|l| !l.trim_start().starts_with("for:"))
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ")
}

/// CPU (millicores) the node can still give: allocatable minus every running pod's requests.
fn free_millicores(release: &Release) -> i64 {
    let millis = |q: &str| {
        if let Some(m) = q.strip_suffix('m') {
            m.parse::<i64>().unwrap()
        } else {
            (q.parse::<f64>().unwrap() * 1000.0) as i64
        }
    };
    let node: Value = serde_json::from_str(&release.node.kubectl_ok(&["get", "nodes", "-o", "json"], None)).unwrap();
    let allocatable = millis(node["items"][0]["status"]["allocatable"]["cpu"].as_str().unwrap());
    let pods: Value =
        serde_json::from_str(&release.node.kubectl_ok(&["get", "pods", "-A", "-o", "json"], None)).unwrap();
    let requested: i64 = pods["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| !["Succeeded", "Failed"].contains(&p["status"]["phase"].as_str().unwrap_or_default()))
        .flat_map(|p| p["spec"]["containers"].as_array().cloned().unwrap_or_default())
        .filter_map(|c| c["resources"]["requests"]["cpu"].as_str().map(millis))
        .sum();
    allocatable - requested
}

fn condition(fs: &Value, type_: &str) -> Value {
    fs["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == type_)
        .cloned()
        .unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warm_up_the_node_cannot_hold_opens_on_time_and_says_so_until_the_pods_come_up() {
    let (release, product) = Release::with_product("pods-capacity", &[]).await;

    // Something else takes the node's CPU: no new order or payment pod (20m) fits.
    let hog = (free_millicores(&release) - 10).max(1);
    let pod = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: cpu-hog\nspec:\n  containers:\n  - name: hog\n    \
         image: localhost/goodsmall/pause:1\n    imagePullPolicy: Never\n    \
         resources: {{ requests: {{ cpu: {hog}m }} }}\n"
    );
    release.kubectl_ok(&["apply", "-f", "-"], Some(&pod));
    release.kubectl_ok(&["wait", "--for=condition=Ready", "pod/cpu-hog", "--timeout=60s"], None);

    let operators = release.kubectl_ok(
        &["get", "pods", "-l", "app.kubernetes.io/component=operator", "-o", "jsonpath={.items[*].status.podIP}"],
        None,
    );
    let jobs: Vec<(String, String)> = operators
        .split_whitespace()
        .enumerate()
        .map(|(i, ip)| (format!("goodsmall-operator-{i}"), format!("http://{ip}:8080")))
        .collect();
    let prometheus = Prometheus::start(&jobs.iter().map(|(j, b)| (j.as_str(), b.as_str())).collect::<Vec<_>>()).await;

    let opens_in = Duration::from_secs(25);
    let applied = Instant::now();
    release.kubectl_ok(
        &["apply", "-f", "-"],
        Some(&release.flash_sale_manifest("short", product, 50, opens_in, Duration::from_secs(600), "15s", Some(3))),
    );
    let pending = release.flash_sale_until("short", "the warm-up pending", opens_in, |fs| {
        condition(fs, "Scaled")["reason"] == "WarmupReplicasPending"
    });
    let scaled = condition(&pending, "Scaled");
    assert_eq!(scaled["status"], "False", "{scaled}");
    assert!(scaled["message"].as_str().unwrap().contains("goodsmall-order 1/3 ready"), "{scaled}");
    let table = release.kubectl_ok(&["get", "fs", "short"], None);
    assert!(table.contains("WarmupReplicasPending"), "kubectl get fs shows the capacity: {table}");

    // The sale opens on time all the same, and says it is short.
    let open = release
        .flash_sale_until("short", "Open", opens_in + Duration::from_secs(20), |fs| fs["status"]["phase"] == "Open");
    let opened_at = applied.elapsed();
    assert!(
        opened_at < opens_in + Duration::from_secs(10),
        "opened {opened_at:?} after the apply, opening at {opens_in:?}"
    );
    let sale = open["status"]["saleId"].as_i64().unwrap();
    let (status, body) = release
        .post(
            &format!("/api/sales/{sale}/purchases"),
            Some(&release.shopper_token(77)),
            serde_json::json!({ "quantity": 1 }),
            Some("short-1"),
        )
        .await;
    assert_eq!(status, 202, "purchases go on at the capacity there is: {body}");
    // Paid, so that nothing is left to settle when the FlashSale is deleted at the end.
    crate::shoppers::pay_all(&release, &[(77, body["order_id"].as_str().unwrap().to_owned())]).await;
    let event = release.wait_for("the CapacityNotReady Warning Event", Duration::from_secs(30), || {
        let events: Value = serde_json::from_str(
            &release.kubectl_ok(&["get", "events", "--field-selector=involvedObject.name=short", "-o", "json"], None),
        )
        .unwrap();
        events["items"].as_array().unwrap().iter().find(|e| e["reason"] == "CapacityNotReady").cloned()
    });
    eprintln!(
        "opened short {opened_at:.1?} after the apply; Event seen {:.1?} after: {}",
        applied.elapsed(),
        event["message"]
    );
    assert_eq!(event["type"], "Warning", "{event}");
    prometheus
        .await_positive(
            r#"goodsmall_operator_warmup_replicas{flash_sale=~".*/short",deployment="goodsmall-order",state="asked"}"#,
            Duration::from_secs(30),
        )
        .await;
    let firing = alert_expr("GoodsmallCapacityNotReady");
    prometheus.await_positive(&firing, Duration::from_secs(30)).await;

    // The node's CPU comes back: the pods start, and the condition follows them.
    release.kubectl_ok(&["delete", "pod", "cpu-hog", "--grace-period=1"], None);
    let freed = Instant::now();
    let ready = release.flash_sale_until("short", "Scaled True", Duration::from_secs(120), |fs| {
        condition(fs, "Scaled")["status"] == "True"
    });
    assert_eq!(condition(&ready, "Scaled")["reason"], "WarmupReplicasReady");
    eprintln!("capacity ready {:.1?} after the CPU was freed", freed.elapsed());
    let quiet = prometheus.instant(&firing).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut quiet = quiet;
    while !quiet.is_empty() {
        assert!(Instant::now() < deadline, "the alert's expression still fires with every pod Ready: {quiet:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
        quiet = prometheus.instant(&firing).await;
    }
}
