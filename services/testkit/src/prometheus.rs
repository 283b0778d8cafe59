//! The observability proofs' parts: a real Prometheus (Debian's `prometheus`) scraping
//! the components under test and taking k6's remote writes, and what the repository says
//! they export — every panel query of `grafana/dashboards/*.json` and the metric table of
//! `docs/metrics.md` — read the way Grafana and the tests need them.

use std::{
    collections::{BTreeSet, HashSet},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use serde_json::Value;

use crate::{free_port, repo_root, require_program, unique_name};

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A private Prometheus scraping `jobs` every second, with the remote-write receiver on.
pub struct Prometheus {
    pub base: String,
    client: reqwest::Client,
    _process: Killed,
    dir: PathBuf,
}

impl Prometheus {
    /// Starts it scraping each (job name, base URL) and waits until it is ready.
    pub async fn start(jobs: &[(&str, &str)]) -> Prometheus {
        let binary = require_program("prometheus", "apt-get install -y prometheus");
        let dir = std::env::temp_dir().join(unique_name("prometheus"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut config = String::from("global: { scrape_interval: 1s, evaluation_interval: 1s }\nscrape_configs:\n");
        for (job, base) in jobs {
            let target = base.trim_start_matches("http://");
            config.push_str(&format!("  - job_name: {job}\n    static_configs: [{{ targets: ['{target}'] }}]\n"));
        }
        std::fs::write(dir.join("prometheus.yml"), config).unwrap();
        let port = free_port();
        let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
        let process = Command::new(binary)
            .arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--web.enable-remote-write-receiver")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("prometheus starts");
        let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
        let prometheus =
            Prometheus { base: format!("http://127.0.0.1:{port}"), client, _process: Killed(process), dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = prometheus.client.get(format!("{}/-/ready", prometheus.base)).send().await {
                if r.status().is_success() {
                    return prometheus;
                }
            }
            assert!(Instant::now() < deadline, "Prometheus did not become ready:\n{}", prometheus.log());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }

    /// `GET /api/v1/{path}` with the query parameters, as JSON.
    pub async fn api(&self, path: &str, params: &[(&str, String)]) -> Value {
        let answer = self
            .client
            .get(format!("{}/api/v1/{path}", self.base))
            .query(params)
            .send()
            .await
            .expect("Prometheus answers");
        answer.json().await.expect("Prometheus answers JSON")
    }

    /// An instant query's result vector.
    pub async fn instant(&self, query: &str) -> Vec<Value> {
        let answer = self.api("query", &[("query", query.to_owned())]).await;
        assert_eq!(answer["status"], "success", "{query}: {answer}");
        answer["data"]["result"].as_array().cloned().unwrap_or_default()
    }

    /// Polls until `query` has a sample with a value above 0.
    pub async fn await_positive(&self, query: &str, patience: Duration) {
        let deadline = Instant::now() + patience;
        loop {
            let result = self.instant(query).await;
            if result
                .iter()
                .any(|s| s["value"][1].as_str().and_then(|v| v.parse::<f64>().ok()).is_some_and(|v| v > 0.0))
            {
                return;
            }
            assert!(Instant::now() < deadline, "Prometheus never saw {query} above 0: {result:?}");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Every series name it holds; with `job`, only that job's.
    pub async fn names(&self, job: Option<&str>) -> HashSet<String> {
        let selector: Vec<(&str, String)> =
            job.map(|job| ("match[]", format!("{{job=\"{job}\"}}"))).into_iter().collect();
        let answer = self.api("label/__name__/values", &selector).await;
        answer["data"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect()
    }

    /// Runs each query as Grafana would over `[start, now]` (`$__rate_interval` = 1m,
    /// the other `(variable, value)` pairs substituted); returns what failed: a query
    /// Prometheus refuses, one with no data, one naming a metric it has never seen.
    pub async fn failing_queries(
        &self,
        queries: &[PanelQuery],
        variables: &[(&str, String)],
        start: SystemTime,
    ) -> Vec<String> {
        let names = self.names(None).await;
        let seconds = |t: SystemTime| t.duration_since(UNIX_EPOCH).unwrap().as_secs().to_string();
        let (start, end) = (seconds(start), seconds(SystemTime::now()));
        let mut failures = Vec::new();
        for panel in queries {
            let mut query = panel.expr.replace("$__rate_interval", "1m");
            for (variable, value) in variables {
                query = query.replace(variable, value);
            }
            let what = format!("{} / {}: {query}", panel.dashboard, panel.panel);
            for name in metric_names(&query) {
                if !names.contains(&name) {
                    failures.push(format!("{what}: names {name}, which no component exports"));
                }
            }
            let range =
                [("query", query.clone()), ("start", start.clone()), ("end", end.clone()), ("step", "2".into())];
            let answer = self.api("query_range", &range).await;
            if answer["status"] != "success" {
                failures.push(format!("{what}: {answer}"));
            } else if answer["data"]["result"].as_array().is_none_or(|r| r.is_empty()) {
                failures.push(format!("{what}: no data"));
            }
        }
        failures
    }
}

/// One target of one panel of a dashboard in `grafana/dashboards/`.
#[derive(Clone, Debug)]
pub struct PanelQuery {
    pub dashboard: String,
    pub panel: String,
    pub expr: String,
}

/// Every query of every panel of every dashboard, in file order.
pub fn dashboard_queries() -> Vec<PanelQuery> {
    let folder = repo_root().join("grafana/dashboards");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let mut queries = Vec::new();
    for file in &files {
        let board: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        let dashboard = board["title"].as_str().unwrap().to_owned();
        for panel in board["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().unwrap() {
                let expr = target["expr"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{}: a target without expr", file.display()))
                    .to_owned();
                queries.push(PanelQuery {
                    dashboard: dashboard.clone(),
                    panel: panel["title"].as_str().unwrap().to_owned(),
                    expr,
                });
            }
        }
    }
    queries
}

/// The dashboards' titles, in file order.
pub fn dashboard_titles() -> Vec<String> {
    let mut titles: Vec<String> = dashboard_queries().into_iter().map(|q| q.dashboard).collect();
    titles.dedup();
    titles
}

/// Metric names a PromQL expression refers to (its identifiers that are names of ours).
pub fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut current = String::new();
    let mut in_string = false;
    for c in expr.chars().chain([' ']) {
        if c == '"' {
            in_string = !in_string;
        }
        if !in_string && (c.is_ascii_alphanumeric() || c == '_') {
            current.push(c);
            continue;
        }
        if current.starts_with("goodsmall_") || current.starts_with("k6_") || current == "up" {
            names.push(std::mem::take(&mut current));
        }
        current.clear();
    }
    names
}

/// A row of the table in `docs/metrics.md`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocumentedMetric {
    pub name: String,
    /// The "Exported by" cell: `every service`, `order`, `engine`, `operator`, ...
    pub exported_by: String,
}

/// The metrics `docs/metrics.md` lists.
pub fn documented_metrics() -> Vec<DocumentedMetric> {
    let doc = std::fs::read_to_string(repo_root().join("docs/metrics.md")).unwrap();
    doc.lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let name = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            Some(DocumentedMetric { name: name.to_owned(), exported_by: cells.get(4)?.to_string() })
        })
        .collect()
}

/// The family a series name belongs to (histograms export `_bucket`, `_sum`, `_count`).
pub fn family(name: &str, families: &BTreeSet<String>) -> String {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix) {
            if families.contains(base) {
                return base.to_owned();
            }
        }
    }
    name.to_owned()
}

/// The `goodsmall_` families among series names.
pub fn goodsmall_families(names: &HashSet<String>, documented: &BTreeSet<String>) -> BTreeSet<String> {
    names.iter().filter(|n| n.starts_with("goodsmall_")).map(|n| family(n, documented)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names_skips_label_values_and_functions() {
        let expr = r#"sum by (outcome) (rate(goodsmall_purchases_total{job="goodsmall_x"}[1m])) / max(k6_vus) + up"#;
        assert_eq!(metric_names(expr), ["goodsmall_purchases_total", "k6_vus", "up"]);
    }

    #[test]
    fn histogram_series_belong_to_their_family() {
        let families: BTreeSet<String> = ["goodsmall_a_seconds".to_owned()].into();
        assert_eq!(family("goodsmall_a_seconds_bucket", &families), "goodsmall_a_seconds");
        assert_eq!(family("goodsmall_b_count", &families), "goodsmall_b_count");
    }
}
