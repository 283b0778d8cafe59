//! Where the time went: the difference of two `/metrics` snapshots (before and after a
//! run), every latency histogram series that moved, by total time spent.

use std::{collections::BTreeMap, path::PathBuf};

use anyhow::Context;
use clap::Args;

#[derive(Args)]
pub struct ProfileArgs {
    /// `/metrics` text taken before the run.
    #[arg(long)]
    pub before: PathBuf,
    /// `/metrics` text taken after the run.
    #[arg(long)]
    pub after: PathBuf,
    /// Show at most this many series.
    #[arg(long, default_value_t = 15)]
    pub top: usize,
}

/// `name{labels}` of a histogram → (sum, count), from Prometheus text.
pub fn histogram_totals(text: &str) -> BTreeMap<String, (f64, f64)> {
    let mut totals: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else { continue };
        let Ok(value) = value.parse::<f64>() else { continue };
        let (name, labels) = series.split_once('{').map_or((series, ""), |(n, l)| (n, l.trim_end_matches('}')));
        let (base, is_sum) = if let Some(base) = name.strip_suffix("_sum") {
            (base, true)
        } else if let Some(base) = name.strip_suffix("_count") {
            (base, false)
        } else {
            continue;
        };
        let key = if labels.is_empty() { base.to_owned() } else { format!("{base}{{{labels}}}") };
        let entry = totals.entry(key).or_default();
        if is_sum {
            entry.0 = value;
        } else {
            entry.1 = value;
        }
    }
    totals
}

pub fn run(args: ProfileArgs) -> anyhow::Result<bool> {
    let read = |p: &PathBuf| std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()));
    let before = histogram_totals(&read(&args.before)?);
    let after = histogram_totals(&read(&args.after)?);
    let mut moved: Vec<(String, f64, f64)> = after
        .iter()
        .filter_map(|(series, (sum, count))| {
            let (sum0, count0) = before.get(series).copied().unwrap_or_default();
            let (sum, count) = (sum - sum0, count - count0);
            (count > 0.0).then(|| (series.trim_start_matches("goodsmall_").to_owned(), sum, count))
        })
        .collect();
    moved.sort_by(|a, b| b.1.total_cmp(&a.1));
    println!("  {:<88} {:>9} {:>10} {:>9}", "server-side series (from /metrics)", "count", "total s", "mean ms");
    for (series, sum, count) in moved.into_iter().take(args.top) {
        println!("  {series:<88} {count:>9.0} {sum:>10.2} {:>9.3}", sum / count * 1000.0);
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_and_counts_of_histograms() {
        let text = "# HELP x\n\
            goodsmall_db_query_duration_seconds_bucket{db=\"order\",query=\"order.insert_batch\",le=\"0.01\"} 3\n\
            goodsmall_db_query_duration_seconds_sum{db=\"order\",query=\"order.insert_batch\"} 0.25\n\
            goodsmall_db_query_duration_seconds_count{db=\"order\",query=\"order.insert_batch\"} 5\n\
            goodsmall_http_requests_total{route=\"/a\"} 9\n";
        let totals = histogram_totals(text);
        assert_eq!(totals.len(), 1);
        assert_eq!(
            totals["goodsmall_db_query_duration_seconds{db=\"order\",query=\"order.insert_batch\"}"],
            (0.25, 5.0)
        );
    }
}
