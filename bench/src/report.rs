//! The summary block of `scripts/bench.sh`, from the files the run left behind:
//! k6's `--summary-export` JSON (throughput and drop), redis-benchmark's `--csv`, and
//! the `verify` verdicts.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use serde_json::Value;

use crate::{
    ledger::{self, Snapshot},
    load::LoadFigures,
    spike::{PayFigures, SpikeFigures},
    verify::Verdict,
};

#[derive(Args)]
pub struct ReportArgs {
    /// Concurrency both load generators ran at (k6 VUs = redis-benchmark clients).
    #[arg(long)]
    pub concurrency: u32,
    /// k6 `--summary-export` of k6/throughput.js.
    #[arg(long)]
    pub throughput_summary: Option<PathBuf>,
    /// `verify --json-out` of the throughput sale.
    #[arg(long)]
    pub throughput_verify: Option<PathBuf>,
    /// `load --out` of the same scenario from the Rust client.
    #[arg(long)]
    pub lean_summary: Option<PathBuf>,
    /// redis-benchmark `--csv` of the reservation script (EVALSHA).
    #[arg(long)]
    pub script_csv: Option<PathBuf>,
    /// k6 `--summary-export` of k6/drop.js.
    #[arg(long)]
    pub drop_summary: Option<PathBuf>,
    /// `verify --json-out` of the drop sale.
    #[arg(long)]
    pub drop_verify: Option<PathBuf>,
    /// `load --out` against a sold-out sale: the shop's sold-out path …
    #[arg(long)]
    pub sold_out_summary: Option<PathBuf>,
    /// … and `load --out` of the same requests against `goodsmall-bench bare`.
    #[arg(long)]
    pub bare_summary: Option<PathBuf>,
    /// `load --poll --out` against a sale's waiting room: the poll path …
    #[arg(long, requires = "bare_poll_summary")]
    pub poll_summary: Option<PathBuf>,
    /// … and the same polls against `goodsmall-bench bare`.
    #[arg(long)]
    pub bare_poll_summary: Option<PathBuf>,
    /// The ledger's snapshots around the lean run (`ledger` module): the section
    /// `Ledger per purchase`, divided by the lean run's accepted purchases.
    #[arg(long, requires = "ledger_after")]
    pub ledger_before: Option<PathBuf>,
    #[arg(long, requires = "ledger_before")]
    pub ledger_after: Option<PathBuf>,
    /// `spike --out`: the section `Spike`.
    #[arg(long)]
    pub spike_summary: Option<PathBuf>,
    /// `verify --json-out` of the spike's sale, read before any payment.
    #[arg(long)]
    pub spike_verify: Option<PathBuf>,
    /// `pay --out` of the spike's accepted orders.
    #[arg(long)]
    pub pay_summary: Option<PathBuf>,
    /// The spike's FlashSale with its events (`GET /api/flashsales/{name}`).
    #[arg(long)]
    pub spike_flashsale: Option<PathBuf>,
    /// When the saga caught up after the spike (a sentence).
    #[arg(long)]
    pub spike_saga: Option<String>,
    /// Each process's CPU over the spike (a sentence).
    #[arg(long)]
    pub spike_cpu: Option<String>,
    /// Goal of the spike: p99 of accepted and of refused purchases at most this (reported).
    #[arg(long, default_value_t = 250.0)]
    pub target_spike_p99_ms: f64,
    /// Target: the sold-out path answers at least this share of the bare handler's rate.
    #[arg(long, default_value_t = 0.80)]
    pub target_sold_out_ratio: f64,
    /// Extra `name=value` lines for the header (stack, settings).
    #[arg(long = "label")]
    pub labels: Vec<String>,
    /// Targets of issue #3: purchase rate at least this share of the raw script rate …
    #[arg(long, default_value_t = 0.30)]
    pub target_ratio: f64,
    /// … and purchase p99 at most this many milliseconds.
    #[arg(long, default_value_t = 50.0)]
    pub target_p99_ms: f64,
}

/// Figures of one throughput run: from k6's summary export, or from `load --out`.
#[derive(Debug, Default, PartialEq)]
pub struct PurchaseFigures {
    pub accepted: f64,
    pub accepted_rate: f64,
    pub refused: f64,
    pub unexpected: f64,
    pub server_errors: f64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub failed_thresholds: Vec<String>,
}

impl PurchaseFigures {
    /// Purchase requests answered (accepted, refused or anything else).
    pub fn purchases(&self) -> f64 {
        self.accepted + self.refused + self.unexpected
    }

    pub fn parse(summary: &Value) -> anyhow::Result<Self> {
        let metrics = summary["metrics"].as_object().context("a k6 summary export has `metrics`")?;
        let number = |metric: &str, stat: &str| metrics.get(metric).and_then(|m| m[stat].as_f64());
        let latency = "http_req_duration{name:purchase}";
        let mut failed_thresholds: Vec<String> = metrics
            .iter()
            .flat_map(|(name, m)| {
                m["thresholds"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter(|(_, failed)| failed.as_bool() == Some(true))
                    .map(move |(t, _)| format!("{name}: {t}"))
            })
            .collect();
        failed_thresholds.sort();
        Ok(Self {
            accepted: number("purchases_accepted", "count").unwrap_or(0.0),
            accepted_rate: number("purchases_accepted", "rate").unwrap_or(0.0),
            refused: number("purchases_refused", "count").unwrap_or(0.0),
            unexpected: number("purchases_unexpected", "count").unwrap_or(0.0),
            server_errors: number("http_5xx", "count").unwrap_or(0.0),
            p50_ms: number(latency, "med"),
            p99_ms: number(latency, "p(99)"),
            failed_thresholds,
        })
    }
}

impl From<LoadFigures> for PurchaseFigures {
    fn from(f: LoadFigures) -> Self {
        Self {
            accepted: f.accepted as f64,
            accepted_rate: f.accepted_rate,
            refused: f.refused as f64,
            unexpected: f.unexpected as f64,
            server_errors: f.server_errors as f64,
            p50_ms: Some(f.p50_ms),
            p99_ms: Some(f.p99_ms),
            failed_thresholds: Vec::new(),
        }
    }
}

/// One row of redis-benchmark `--csv`.
#[derive(Debug, PartialEq)]
pub struct ScriptFigures {
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

impl ScriptFigures {
    pub fn parse(csv: &str) -> anyhow::Result<Self> {
        let mut lines = csv.lines().filter(|l| !l.trim().is_empty());
        let header = fields(lines.next().context("empty redis-benchmark CSV")?);
        let row = fields(lines.next().context("redis-benchmark CSV without a result row")?);
        let column = |name: &str| -> anyhow::Result<f64> {
            let i =
                header.iter().position(|h| h == name).with_context(|| format!("no `{name}` column in {header:?}"))?;
            row.get(i).and_then(|v| v.parse().ok()).with_context(|| format!("`{name}` is not a number in {row:?}"))
        };
        Ok(Self { rps: column("rps")?, p50_ms: column("p50_latency_ms")?, p99_ms: column("p99_latency_ms")? })
    }
}

/// Splits a CSV line of double-quoted fields (redis-benchmark quotes every field).
fn fields(line: &str) -> Vec<String> {
    line.split("\",\"").map(|f| f.trim().trim_matches('"').to_owned()).collect()
}

fn read_json(path: &Path) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))
}

fn read_verdict(path: &Path) -> anyhow::Result<Verdict> {
    Ok(serde_json::from_value(read_json(path)?)?)
}

fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".into(), |v| format!("{v:.1} ms"))
}

fn met(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "MISSED"
    }
}

/// Prints the block; Ok(false) when the run must fail.
pub fn run(args: ReportArgs) -> anyhow::Result<bool> {
    if args.throughput_summary.is_none() && args.drop_summary.is_none() && args.script_csv.is_none() {
        bail!("nothing to report: pass --throughput-summary, --script-csv and/or --drop-summary");
    }
    let mut problems: Vec<String> = Vec::new();
    // The run in the three lines docs/benchmarks.md keeps, printed last.
    let mut headline: Vec<String> = Vec::new();
    let line = |name: &str, value: String| println!("  {name:<34} {value}");
    println!();
    println!("==================== GoodsMall bench summary ====================");
    line("concurrency", format!("{} (k6 VUs = load workers = redis-benchmark clients)", args.concurrency));
    for label in &args.labels {
        let (name, value) = label.split_once('=').unwrap_or((label.as_str(), ""));
        line(name, value.to_owned());
    }

    let throughput = args
        .throughput_summary
        .as_deref()
        .map(|p| read_json(p).and_then(|v| PurchaseFigures::parse(&v)))
        .transpose()?;
    let script = args
        .script_csv
        .as_deref()
        .map(|p| {
            std::fs::read_to_string(p).context("reading the redis-benchmark CSV").and_then(|t| ScriptFigures::parse(&t))
        })
        .transpose()?;

    let lean: Option<PurchaseFigures> = args
        .lean_summary
        .as_deref()
        .map(|p| read_json(p).and_then(|v| Ok(serde_json::from_value::<LoadFigures>(v)?.into())))
        .transpose()?;
    if let Some(s) = &script {
        line(
            "raw script rate (EVALSHA/s)",
            format!("{:.0}/s  (p50 {:.2} ms, p99 {:.2} ms)", s.rps, s.p50_ms, s.p99_ms),
        );
    }
    for (generator, figures) in [("k6", &throughput), ("goodsmall-bench load", &lean)] {
        let Some(t) = figures else { continue };
        println!("  -- purchases driven by {generator}");
        line(
            "purchase rate (202 answers/s)",
            format!("{:.0}/s  ({:.0} accepted of {:.0} purchase requests)", t.accepted_rate, t.accepted, t.purchases()),
        );
        line("purchase latency p50 / p99", format!("{} / {}", ms(t.p50_ms), ms(t.p99_ms)));
        if t.unexpected > 0.0 || t.refused > 0.0 {
            line("purchases refused / unexpected", format!("{:.0} / {:.0}", t.refused, t.unexpected));
        }
        if t.server_errors > 0.0 {
            problems.push(format!("throughput ({generator}): {:.0} answers were 5xx", t.server_errors));
        }
        if let Some(s) = &script {
            let ratio = if s.rps > 0.0 { t.accepted_rate / s.rps } else { 0.0 };
            if generator == "goodsmall-bench load" {
                headline.push(format!("purchases: {:.1} % of the raw script rate", ratio * 100.0));
            }
            line(
                "purchase rate / script rate",
                format!(
                    "{:.1} %  (target >= {:.0} %: {})",
                    ratio * 100.0,
                    args.target_ratio * 100.0,
                    met(ratio >= args.target_ratio)
                ),
            );
        }
        let p99_ok = t.p99_ms.is_some_and(|p| p <= args.target_p99_ms);
        line("purchase p99 target", format!("<= {:.0} ms: {}", args.target_p99_ms, met(p99_ok)));
    }
    if lean.is_some() || throughput.is_some() {
        println!("  --");
    }
    if let (Some(before), Some(after)) = (&args.ledger_before, &args.ledger_after) {
        let purchases = lean.as_ref().map_or(0, |l| l.accepted as u64);
        println!("  -- Ledger per purchase (goodsmall-bench load run, until each payment is PENDING)");
        for (name, value) in ledger::lines(&Snapshot::read(before)?, &Snapshot::read(after)?, purchases) {
            if name == "CPU per purchase, all processes" {
                headline.insert(0, format!("{name}: {value}"));
            }
            line(&name, value);
        }
        println!("  --");
    }
    let load_figures = |path: &Option<PathBuf>| -> anyhow::Result<Option<LoadFigures>> {
        path.as_deref().map(|p| read_json(p).and_then(|v| Ok(serde_json::from_value::<LoadFigures>(v)?))).transpose()
    };
    if let (Some(sold_out), Some(bare)) = (load_figures(&args.sold_out_summary)?, load_figures(&args.bare_summary)?) {
        line(
            "sold-out path (409 answers/s)",
            format!("{:.0}/s  (p50 {:.2} ms, p99 {:.2} ms)", sold_out.answered_rate, sold_out.p50_ms, sold_out.p99_ms),
        );
        line(
            "bare handler (409 answers/s)",
            format!("{:.0}/s  (p50 {:.2} ms, p99 {:.2} ms)", bare.answered_rate, bare.p50_ms, bare.p99_ms),
        );
        let ratio = if bare.answered_rate > 0.0 { sold_out.answered_rate / bare.answered_rate } else { 0.0 };
        headline.push(format!(
            "sold-out path: {:.0}/s vs {:.0}/s bare = {:.1} %",
            sold_out.answered_rate,
            bare.answered_rate,
            ratio * 100.0
        ));
        let goal = args.target_sold_out_ratio;
        line(
            "sold-out path / bare handler",
            format!("{:.1} %  (target >= {:.0} %: {})", ratio * 100.0, goal * 100.0, met(ratio >= goal)),
        );
        if sold_out.server_errors > 0 || sold_out.unexpected > 0 {
            problems.push(format!(
                "sold-out path: {} 5xx and {} answers other than SOLD_OUT",
                sold_out.server_errors, sold_out.unexpected
            ));
        }
        println!("  --");
    }
    if let (Some(poll), Some(bare)) = (load_figures(&args.poll_summary)?, load_figures(&args.bare_poll_summary)?) {
        line(
            "waiting-room polls (200 answers/s)",
            format!("{:.0}/s  (p50 {:.2} ms, p99 {:.2} ms)", poll.answered_rate, poll.p50_ms, poll.p99_ms),
        );
        line(
            "bare handler (200 answers/s)",
            format!("{:.0}/s  (p50 {:.2} ms, p99 {:.2} ms)", bare.answered_rate, bare.p50_ms, bare.p99_ms),
        );
        let ratio = if bare.answered_rate > 0.0 { poll.answered_rate / bare.answered_rate } else { 0.0 };
        let goal = args.target_sold_out_ratio;
        line(
            "poll path / bare handler",
            format!("{:.1} %  (target >= {:.0} %: {})", ratio * 100.0, goal * 100.0, met(ratio >= goal)),
        );
        headline.push(format!(
            "poll path: {:.0}/s vs {:.0}/s bare = {:.1} %",
            poll.answered_rate,
            bare.answered_rate,
            ratio * 100.0
        ));
        if poll.server_errors > 0 || poll.unexpected > 0 {
            problems
                .push(format!("poll path: {} 5xx and {} answers other than 200", poll.server_errors, poll.unexpected));
        }
        println!("  --");
    }
    if let Some(path) = &args.throughput_verify {
        let v = read_verdict(path)?;
        let accepted_seen = throughput.iter().chain(&lean).map(|t| t.accepted).sum::<f64>();
        let seen = format!("; the load generators saw {accepted_seen:.0} accepted");
        line(
            "oversell (throughput sale)",
            format!(
                "{}  (sale {}: {} of {} units taken, conserved: {}{seen})",
                v.oversell, v.sale_id, v.taken, v.stock, v.conserved
            ),
        );
        if !v.ok() {
            problems.push(format!("throughput sale {}: oversell {}, conserved {}", v.sale_id, v.oversell, v.conserved));
        }
        // More taken than the generators saw is possible (a request that timed out on the
        // client may still have been accepted); fewer would mean a 202 without a reservation.
        if (v.taken as f64) < accepted_seen {
            problems.push(format!(
                "throughput sale {}: {accepted_seen:.0} answers were 202 but only {} units are taken",
                v.sale_id, v.taken
            ));
        }
    }
    if let Some(path) = &args.drop_summary {
        let d = PurchaseFigures::parse(&read_json(path)?)?;
        line(
            "drop (110 buyers for 100 units)",
            format!(
                "{:.0} accepted, {:.0} refused SOLD_OUT/INSUFFICIENT_STOCK, {:.0} other, {:.0} 5xx",
                d.accepted, d.refused, d.unexpected, d.server_errors
            ),
        );
        if d.server_errors > 0.0 || d.unexpected > 0.0 {
            problems.push(format!("drop: {:.0} 5xx and {:.0} unexpected answers", d.server_errors, d.unexpected));
        }
        if let Some(path) = &args.drop_verify {
            let v = read_verdict(path)?;
            line(
                "drop sale counters",
                format!(
                    "sale {}: {} taken of {}, oversell {}, conserved: {}",
                    v.sale_id, v.taken, v.stock, v.oversell, v.conserved
                ),
            );
            if !v.ok() {
                problems.push(format!(
                    "drop sale {}: oversell {}, conserved {}, taken {}",
                    v.sale_id, v.oversell, v.conserved, v.taken
                ));
            }
            if d.accepted as i64 != v.stock {
                problems.push(format!("drop: {:.0} accepted, expected exactly the stock ({})", d.accepted, v.stock));
            }
        }
    }
    if let Some(path) = &args.spike_summary {
        spike_section(&args, path, &line, &mut problems)?;
    }
    if !headline.is_empty() {
        println!("  -- Headline");
        for h in &headline {
            println!("  {h}");
        }
    }
    if problems.is_empty() {
        line("verdict", "PASS: no oversell, no 5xx, the drop sold exactly its stock".into());
    } else {
        line("verdict", "FAIL".into());
        for p in &problems {
            println!("    - {p}");
        }
    }
    println!("=================================================================");
    Ok(problems.is_empty())
}

/// The `Spike` section: a drop's opening, open loop.
fn spike_section(
    args: &ReportArgs,
    path: &Path,
    line: &dyn Fn(&str, String),
    problems: &mut Vec<String>,
) -> anyhow::Result<()> {
    let s: SpikeFigures = serde_json::from_value(read_json(path)?)?;
    let verdict = args.spike_verify.as_deref().map(read_verdict).transpose()?;
    let stock = verdict.as_ref().map(|v| v.stock);
    println!(
        "  -- Spike ({} shoppers arriving over {:.1} s, open loop, for {} units)",
        s.arrivals,
        s.over_millis as f64 / 1000.0,
        stock.map_or("?".into(), |n| n.to_string())
    );
    if s.connections > 0 {
        line("generator", format!("at most {} requests in flight, on kept-alive connections", s.connections));
    }
    line(
        "answered",
        format!(
            "{} of {} ({} accepted, {} refused SOLD_OUT/INSUFFICIENT_STOCK, {} other, {} 5xx, {} unanswered)",
            s.answered(),
            s.arrivals,
            s.accepted,
            s.refused,
            s.other,
            s.server_errors,
            s.unanswered
        ),
    );
    if s.server_errors > 0 || s.unanswered > 0 || s.other > 0 {
        problems
            .push(format!("spike: {} 5xx, {} unanswered, {} other answers", s.server_errors, s.unanswered, s.other));
    }
    if let Some(v) = &verdict {
        line(
            "units taken",
            format!(
                "{} of {} (sale {}, oversell {}, conserved: {})",
                v.taken, v.stock, v.sale_id, v.oversell, v.conserved
            ),
        );
        if !v.ok() || v.taken != v.stock || s.accepted as i64 != v.stock {
            problems.push(format!(
                "spike sale {}: {} taken and {} accepted, expected exactly {}; oversell {}, conserved {}",
                v.sale_id, v.taken, s.accepted, v.stock, v.oversell, v.conserved
            ));
        }
    }
    let goal = args.target_spike_p99_ms;
    line(
        "accepted p50 / p99 / max",
        format!(
            "{} / {} / {}  (goal p99 <= {goal:.0} ms: {})",
            ms(Some(s.accepted_p50_ms)),
            ms(Some(s.accepted_p99_ms)),
            ms(Some(s.accepted_max_ms)),
            met(s.accepted_p99_ms <= goal)
        ),
    );
    line(
        "refused p50 / p99 / max",
        format!(
            "{} / {} / {}  (goal p99 <= {goal:.0} ms: {})",
            ms(Some(s.refused_p50_ms)),
            ms(Some(s.refused_p99_ms)),
            ms(Some(s.refused_max_ms)),
            met(s.refused_p99_ms <= goal)
        ),
    );
    line(
        "opening to SOLD_OUT",
        format!(
            "last unit's 202 at +{:.0} ms, first SOLD_OUT at +{}{}",
            s.last_accepted_ms,
            s.first_refused_ms.map_or("- (none)".into(), |v| format!("{v:.0} ms")),
            operator_sold_out(args.spike_flashsale.as_deref())
                .map_or(String::new(), |t| format!("; the FlashSale's phase SoldOut at {t}"))
        ),
    );
    line(
        "last answer",
        format!("+{:.0} ms (generator at most {:.1} ms behind its schedule)", s.last_answer_ms, s.max_send_lag_ms),
    );
    if let Some(saga) = &args.spike_saga {
        line("saga", saga.clone());
    }
    if let Some(cpu) = &args.spike_cpu {
        line("CPU, the whole spike", cpu.clone());
    }
    if let Some(p) = args.pay_summary.as_deref() {
        let p: PayFigures = serde_json::from_value(read_json(p)?)?;
        let share = if p.orders > 0 { p.paid as f64 / p.orders as f64 * 100.0 } else { 0.0 };
        line(
            "paid",
            format!(
                "{} of {} orders ({share:.0} %), {} declined by the simulated PSP, {} other; \
                 p50 {:.1} ms, p99 {:.1} ms",
                p.paid, p.orders, p.declined, p.unexpected, p.p50_ms, p.p99_ms
            ),
        );
        if p.unexpected > 0 {
            problems.push(format!("spike payments: {} answers other than 200 or 402", p.unexpected));
        }
    }
    println!("  --");
    Ok(())
}

/// "+X s after the opening" of the first SoldOut event of the FlashSale, if any.
fn operator_sold_out(path: Option<&Path>) -> Option<String> {
    let fs = read_json(path?).ok()?;
    let opens: chrono::DateTime<chrono::Utc> = fs["spec"]["opensAt"].as_str()?.parse().ok()?;
    let at = fs["events"].as_array()?.iter().find(|e| e["reason"] == "SoldOut")?["time"]
        .as_str()?
        .parse::<chrono::DateTime<chrono::Utc>>()
        .ok()?;
    Some(format!("+{:.1} s (the operator's refresh)", (at - opens).num_milliseconds() as f64 / 1000.0))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_the_k6_summary_export() {
        let summary = json!({"metrics": {
            "purchases_accepted": {"count": 1200, "rate": 40.0, "thresholds": {"count>0": false}},
            "purchases_refused": {"count": 3, "rate": 0.1},
            "http_5xx": {"count": 0, "rate": 0},
            "http_reqs": {"count": 1203, "rate": 40.1},
            "http_req_duration{name:purchase}": {"med": 12.5, "p(99)": 61.0, "thresholds": {"p(99)<50": true}},
        }});
        let f = PurchaseFigures::parse(&summary).unwrap();
        assert_eq!((f.accepted, f.accepted_rate, f.refused, f.purchases()), (1200.0, 40.0, 3.0, 1203.0));
        assert_eq!((f.p50_ms, f.p99_ms), (Some(12.5), Some(61.0)));
        assert_eq!(f.failed_thresholds, vec!["http_req_duration{name:purchase}: p(99)<50".to_owned()]);
    }

    #[test]
    fn reads_the_lean_generators_figures() {
        let written = json!({"accepted": 900, "accepted_rate": 30.0, "refused": 4, "unexpected": 2, "server_errors": 1,
                             "p50_ms": 11.0, "p90_ms": 20.0, "p99_ms": 48.5, "max_ms": 70.0, "seconds": 30.0});
        let f: PurchaseFigures = serde_json::from_value::<LoadFigures>(written).unwrap().into();
        assert_eq!((f.accepted, f.accepted_rate, f.purchases(), f.server_errors), (900.0, 30.0, 906.0, 1.0));
        assert_eq!((f.p50_ms, f.p99_ms), (Some(11.0), Some(48.5)));
    }

    #[test]
    fn reads_redis_benchmark_csv() {
        let csv = concat!(
            r#""test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","#,
            r#""max_latency_ms""#,
            "\n",
            r#""EVALSHA abc 4 sale:{1} __rand_int__","11621.15","1.560","0.216","1.071","5.431","8.719","22.783""#,
            "\n"
        );
        assert_eq!(ScriptFigures::parse(csv).unwrap(), ScriptFigures { rps: 11621.15, p50_ms: 1.071, p99_ms: 8.719 });
    }
}
