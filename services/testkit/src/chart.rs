//! The Helm chart's processes as the kubelet would start them: each Deployment's
//! container environment, rendered offline by scripts/render_chart.py with one of the
//! value sets scripts/check_chart.py renders, its ConfigMap references resolved. The
//! tests that load each process's settings from it are services/shop/tests/chart_settings.rs
//! and operator/tests/chart_settings.rs.

use serde_json::Value;

use crate::repo_root;

/// Where a variable's value comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum EnvSource {
    /// Written in the Deployment or its ConfigMap.
    Value(String),
    /// A key of a Secret (made by the chart or named by the values).
    Secret { name: String, key: String },
    /// The downward API (`metadata.name`, ...).
    Field(String),
}

/// A Deployment's container and the environment it starts with.
#[derive(Debug, Clone)]
pub struct ChartContainer {
    /// `app.kubernetes.io/component`: user, product, order, payment or operator.
    pub component: String,
    /// `Deployment/<name>` (and the container's name when there are several).
    pub workload: String,
    /// In the order Kubernetes applies them: `envFrom`, then `env` (later wins).
    pub env: Vec<(String, EnvSource)>,
}

/// The labels of the value sets scripts/check_chart.py renders (`render_chart.py --variants`).
pub fn chart_variants() -> Vec<String> {
    let out = render_chart(&["--variants"]);
    let labels: Vec<String> = out.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect();
    assert!(!labels.is_empty(), "render_chart.py --variants listed no value set");
    labels
}

/// Every Deployment's containers of the chart rendered with the value set `variant`,
/// `set_json` merged over it (`"{}"` for none).
pub fn chart_containers(variant: &str, set_json: &str) -> Vec<ChartContainer> {
    let out =
        render_chart(&["--variant", variant, "--kinds", "Deployment,ConfigMap", "--set-json", set_json, "--json"]);
    let objects: Vec<Value> =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("render_chart.py --json printed no JSON array: {e}"));
    let config_maps: Vec<&Value> = objects.iter().filter(|o| o["kind"] == "ConfigMap").collect();
    let config_value = |map: &str, key: Option<&str>| -> Vec<(String, String)> {
        let found = config_maps
            .iter()
            .find(|o| o["metadata"]["name"] == map)
            .unwrap_or_else(|| panic!("[{variant}] ConfigMap {map} is referenced but not rendered"));
        let data = found["data"].as_object().cloned().unwrap_or_default();
        let text = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_owned);
        match key {
            Some(key) => vec![(
                key.to_owned(),
                text(data.get(key).unwrap_or_else(|| panic!("[{variant}] ConfigMap {map} has no key {key}"))),
            )],
            None => data.iter().map(|(k, v)| (k.clone(), text(v))).collect(),
        }
    };
    let mut containers = Vec::new();
    for deployment in objects.iter().filter(|o| o["kind"] == "Deployment") {
        let name = deployment["metadata"]["name"].as_str().unwrap_or_default();
        let component =
            deployment["metadata"]["labels"]["app.kubernetes.io/component"].as_str().unwrap_or_default().to_owned();
        let pod_containers =
            deployment["spec"]["template"]["spec"]["containers"].as_array().cloned().unwrap_or_default();
        for container in &pod_containers {
            let workload = if pod_containers.len() == 1 {
                format!("Deployment/{name}")
            } else {
                format!("Deployment/{name} container {}", container["name"])
            };
            let mut env: Vec<(String, EnvSource)> = Vec::new();
            let mut set = |var: String, source: EnvSource| match env.iter_mut().find(|(name, _)| *name == var) {
                Some(existing) => existing.1 = source,
                None => env.push((var, source)),
            };
            for from in container["envFrom"].as_array().into_iter().flatten() {
                let map = from["configMapRef"]["name"].as_str().unwrap_or_else(|| {
                    panic!("[{variant}] {workload}: envFrom {from} is not a ConfigMap (this test resolves only those)")
                });
                let prefix = from["prefix"].as_str().unwrap_or_default();
                for (key, value) in config_value(map, None) {
                    set(format!("{prefix}{key}"), EnvSource::Value(value));
                }
            }
            for var in container["env"].as_array().into_iter().flatten() {
                let var_name = var["name"].as_str().unwrap_or_default().to_owned();
                let from = &var["valueFrom"];
                let source = if let Some(value) = var.get("value") {
                    EnvSource::Value(value.as_str().map_or_else(|| value.to_string(), str::to_owned))
                } else if let Some(r) = from.get("configMapKeyRef") {
                    let (map, key) = (r["name"].as_str().unwrap_or_default(), r["key"].as_str().unwrap_or_default());
                    EnvSource::Value(config_value(map, Some(key)).remove(0).1)
                } else if let Some(r) = from.get("secretKeyRef") {
                    EnvSource::Secret {
                        name: r["name"].as_str().unwrap_or_default().to_owned(),
                        key: r["key"].as_str().unwrap_or_default().to_owned(),
                    }
                } else if let Some(path) = from["fieldRef"]["fieldPath"].as_str() {
                    EnvSource::Field(path.to_owned())
                } else if var.get("valueFrom").is_none() {
                    EnvSource::Value(String::new())
                } else {
                    panic!("[{variant}] {workload}: {var_name} comes from {from}, which this test does not resolve")
                };
                set(var_name, source);
            }
            containers.push(ChartContainer { component: component.clone(), workload, env });
        }
    }
    assert!(!containers.is_empty(), "[{variant}] the chart rendered no Deployment");
    containers
}

/// `scripts/render_chart.py` with these arguments: what it prints.
fn render_chart(args: &[&str]) -> String {
    let out = std::process::Command::new("python3")
        .arg(repo_root().join("scripts/render_chart.py"))
        .args(args)
        .output()
        .expect("python3 runs");
    assert!(out.status.success(), "rendering the chart ({args:?}) failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("the rendered chart is UTF-8")
}
