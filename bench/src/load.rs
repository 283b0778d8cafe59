//! `load`: the throughput scenario of `k6/throughput.js` from a lean Rust client.
//!
//! k6 runs JavaScript per request and needs about 0.8 ms of CPU for each purchase
//! (docs/benchmarks.md), which on a 2-core box is as much as the shop itself; the
//! redis-benchmark it is compared with is a C event loop that costs a few µs per call.
//! This generator does what the k6 script does (closed loop, `CONCURRENCY` workers, each
//! buying one unit with a fresh `Idempotency-Key` as soon as it is answered, tokens
//! spread evenly) at a fraction of the CPU, so the ratio measures the shop rather than
//! the load generator. Its figures are written in the shape `report` reads.

use std::{path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context;
use clap::Args;
use serde::Serialize;
use tokio::time::Instant;

use crate::crowd::SaleCrowd;

#[derive(Args)]
pub struct LoadArgs {
    #[command(flatten)]
    pub crowd: SaleCrowd,
    /// Workers, each with its own kept-alive connection, buying in a closed loop.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 30)]
    pub duration_secs: u64,
    /// Threads the workers are spread over, each with its own runtime and connections
    /// (0: one per core), so that the generator is not what limits the rate.
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Where the figures go (JSON).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Poll the sale's waiting room (`GET /api/sales/{id}/queue`) instead of buying: a
    /// 200 counts as answered (`refused` in the figures, as the sold-out path's answers).
    #[arg(long)]
    pub poll: bool,
}

/// What one run measured; `report --lean-summary` reads it.
#[derive(Debug, Default, Serialize, serde::Deserialize, PartialEq)]
pub struct LoadFigures {
    pub accepted: u64,
    /// Accepted purchases per second over the measured time.
    pub accepted_rate: f64,
    /// Answers of the expected kinds (accepted or refused for stock) per second: the
    /// rate of the sold-out path, where every answer is a refusal.
    #[serde(default)]
    pub answered_rate: f64,
    /// 409 `SOLD_OUT` / `INSUFFICIENT_STOCK`: the expected way to be turned away.
    pub refused: u64,
    /// Any other answer, or no answer (timeouts, connection errors).
    pub unexpected: u64,
    pub server_errors: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub seconds: f64,
}

#[derive(Default)]
struct Tally {
    accepted: u64,
    refused: u64,
    unexpected: u64,
    server_errors: u64,
    /// Latency of every answered purchase, in µs.
    latencies_us: Vec<u32>,
}

pub async fn run(args: LoadArgs) -> anyhow::Result<bool> {
    anyhow::ensure!(
        args.concurrency >= 1 && args.duration_secs >= 1,
        "--concurrency and --duration-secs must be at least 1"
    );
    let tokens = Arc::new(args.crowd.tokens()?);
    let threads = match args.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
    .min(args.concurrency);
    let path = if args.poll { "/queue" } else { "/purchases" };
    let url = Arc::new(args.crowd.sale_url(path));
    let poll = args.poll;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.duration_secs);
    // Each thread runs its share of the workers on a runtime of its own: no task or
    // connection moves between threads.
    let mut threads_running = Vec::with_capacity(threads);
    for thread in 0..threads {
        let workers: Vec<usize> = (thread..args.concurrency).step_by(threads).collect();
        let (url, tokens, concurrency) = (url.clone(), tokens.clone(), args.concurrency);
        threads_running.push(std::thread::spawn(move || -> anyhow::Result<Vec<Tally>> {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async move {
                let client = reqwest::Client::builder()
                    .pool_max_idle_per_host(workers.len())
                    .timeout(Duration::from_secs(10))
                    .build()?;
                let running: Vec<_> = workers
                    .into_iter()
                    .map(|worker| {
                        let (client, url, tokens) = (client.clone(), url.clone(), tokens.clone());
                        tokio::spawn(buy(client, url, tokens, worker, concurrency, deadline, poll))
                    })
                    .collect();
                let mut tallies = Vec::with_capacity(running.len());
                for worker in running {
                    tallies.push(worker.await?);
                }
                Ok(tallies)
            })
        }));
    }
    let mut workers = Vec::with_capacity(args.concurrency);
    for thread in threads_running {
        let tallies = tokio::task::spawn_blocking(move || thread.join())
            .await?
            .map_err(|_| anyhow::anyhow!("a load thread panicked"))??;
        workers.extend(tallies);
    }
    let mut total = Tally::default();
    for tally in workers {
        total.accepted += tally.accepted;
        total.refused += tally.refused;
        total.unexpected += tally.unexpected;
        total.server_errors += tally.server_errors;
        total.latencies_us.extend(tally.latencies_us);
    }
    let seconds = started.elapsed().as_secs_f64();
    let figures = summarise(total, seconds);
    println!(
        "goodsmall-bench load: {} accepted ({:.0}/s), {} refused ({:.0} answers/s), {} unexpected ({} 5xx); \
         p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        figures.accepted,
        figures.accepted_rate,
        figures.refused,
        figures.answered_rate,
        figures.unexpected,
        figures.server_errors,
        figures.p50_ms,
        figures.p90_ms,
        figures.p99_ms,
        figures.max_ms
    );
    if let Some(out) = &args.out {
        std::fs::write(out, serde_json::to_vec_pretty(&figures)?)
            .with_context(|| format!("writing {}", out.display()))?;
    }
    Ok(figures.server_errors == 0)
}

/// One worker: buys (or polls its place, `poll`) in a closed loop until `deadline` on its
/// kept-alive connection. Worker w takes tokens w, w+C, w+2C, ...: every shopper gets an
/// even share.
async fn buy(
    client: reqwest::Client,
    url: Arc<String>,
    tokens: Arc<Vec<String>>,
    worker: usize,
    concurrency: usize,
    deadline: Instant,
    poll: bool,
) -> Tally {
    let mut tally = Tally::default();
    let mut next = worker % tokens.len();
    let mut iteration = 0u64;
    while Instant::now() < deadline {
        let key = format!("rs-{worker}-{iteration}-{}", uuid::Uuid::new_v4().simple());
        iteration += 1;
        let sent = Instant::now();
        let request = if poll {
            client.get(url.as_str()).bearer_auth(&tokens[next])
        } else {
            client
                .post(url.as_str())
                .bearer_auth(&tokens[next])
                .header("Idempotency-Key", key)
                .header("Content-Type", "application/json")
                .body(r#"{"quantity":1}"#)
        };
        let answer = request.send().await;
        next = (next + concurrency) % tokens.len();
        let Ok(response) = answer else {
            tally.unexpected += 1;
            continue;
        };
        let status = response.status().as_u16();
        let body = response.bytes().await.unwrap_or_default();
        tally.latencies_us.push(sent.elapsed().as_micros().min(u32::MAX as u128) as u32);
        match status {
            200 if poll => tally.refused += 1,
            202 => tally.accepted += 1,
            409 if is_stock_refusal(&body) => tally.refused += 1,
            500.. => {
                tally.server_errors += 1;
                tally.unexpected += 1;
            }
            _ => tally.unexpected += 1,
        }
    }
    tally
}

fn is_stock_refusal(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["code"].as_str().map(|c| c == "SOLD_OUT" || c == "INSUFFICIENT_STOCK"))
        .unwrap_or(false)
}

fn summarise(mut tally: Tally, seconds: f64) -> LoadFigures {
    tally.latencies_us.sort_unstable();
    let quantile = |q: f64| -> f64 {
        if tally.latencies_us.is_empty() {
            return 0.0;
        }
        // Nearest rank: the smallest latency with at least q of the answers at or below it.
        let rank = ((q * tally.latencies_us.len() as f64).ceil() as usize).clamp(1, tally.latencies_us.len());
        tally.latencies_us[rank - 1] as f64 / 1000.0
    };
    LoadFigures {
        accepted: tally.accepted,
        accepted_rate: if seconds > 0.0 { tally.accepted as f64 / seconds } else { 0.0 },
        answered_rate: if seconds > 0.0 { (tally.accepted + tally.refused) as f64 / seconds } else { 0.0 },
        refused: tally.refused,
        unexpected: tally.unexpected,
        server_errors: tally.server_errors,
        p50_ms: quantile(0.50),
        p90_ms: quantile(0.90),
        p99_ms: quantile(0.99),
        max_ms: quantile(1.0),
        seconds,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank_in_milliseconds() {
        let tally =
            Tally { accepted: 100, latencies_us: (1..=100).rev().map(|ms| ms * 1000).collect(), ..Tally::default() };
        let f = summarise(tally, 4.0);
        assert_eq!((f.accepted_rate, f.p50_ms, f.p90_ms, f.p99_ms, f.max_ms), (25.0, 50.0, 90.0, 99.0, 100.0));
        let refused = Tally { accepted: 10, refused: 30, latencies_us: vec![1000; 40], ..Tally::default() };
        assert_eq!(summarise(refused, 4.0).answered_rate, 10.0, "accepted and refused answers both count");
        assert_eq!(summarise(Tally::default(), 1.0).p99_ms, 0.0);
    }

    /// A stand-in shop on a real socket: 202 for the first 100 purchases, one 500, then
    /// 409 SOLD_OUT; it records each request's token and Idempotency-Key.
    async fn fake_shop() -> (String, Arc<std::sync::Mutex<Vec<(String, String)>>>) {
        use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen: Arc<std::sync::Mutex<Vec<(String, String)>>> = Arc::default();
        let log = seen.clone();
        tokio::spawn(async move {
            loop {
                let (socket, _) = listener.accept().await.unwrap();
                let log = log.clone();
                tokio::spawn(async move {
                    let mut reader = BufReader::new(socket);
                    loop {
                        let (mut token, mut key, mut length) = (String::new(), String::new(), 0usize);
                        loop {
                            let mut line = String::new();
                            if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                                return;
                            }
                            let line = line.trim_end();
                            if line.is_empty() {
                                break;
                            }
                            let (name, value) = line.split_once(": ").unwrap_or((line, ""));
                            match name.to_ascii_lowercase().as_str() {
                                "authorization" => token = value.trim_start_matches("Bearer ").to_owned(),
                                "idempotency-key" => key = value.to_owned(),
                                "content-length" => length = value.parse().unwrap(),
                                _ => {}
                            }
                        }
                        let mut body = vec![0; length];
                        reader.read_exact(&mut body).await.unwrap();
                        let n = {
                            let mut log = log.lock().unwrap();
                            log.push((token, key));
                            log.len()
                        };
                        let (status, body) = match n {
                            ..=100 => ("202 Accepted", r#"{"order_id":"x"}"#),
                            101 => ("500 Internal Server Error", r#"{"code":"INTERNAL"}"#),
                            _ => ("409 Conflict", r#"{"code":"SOLD_OUT"}"#),
                        };
                        let answer = format!(
                            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        reader.get_mut().write_all(answer.as_bytes()).await.unwrap();
                    }
                });
            }
        });
        (url, seen)
    }

    #[tokio::test]
    async fn the_client_counts_every_answer_and_spreads_tokens_and_keys() {
        let (base_url, seen) = fake_shop().await;
        let dir = std::env::temp_dir().join(format!("goodsmall-load-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let tokens: Vec<String> = (0..5).map(|n| format!("token-{n}")).collect();
        std::fs::write(dir.join("tokens.json"), serde_json::to_vec(&tokens).unwrap()).unwrap();
        let args = LoadArgs {
            crowd: SaleCrowd { base_url, sale_id: 1, tokens_file: dir.join("tokens.json") },
            concurrency: 3,
            duration_secs: 1,
            threads: 2,
            out: Some(dir.join("figures.json")),
            poll: false,
        };
        assert!(!run(args).await.unwrap(), "a 5xx fails the run");

        let figures: LoadFigures = serde_json::from_slice(&std::fs::read(dir.join("figures.json")).unwrap()).unwrap();
        let seen = seen.lock().unwrap().clone();
        assert!(seen.len() > 101, "the loop kept buying for the whole second: {}", seen.len());
        assert_eq!((figures.accepted, figures.server_errors), (100, 1));
        assert_eq!(figures.refused, seen.len() as u64 - 101, "every SOLD_OUT counted as refused");
        assert_eq!(figures.unexpected, 1, "the 500 is unexpected");
        assert!(figures.p50_ms > 0.0 && figures.p50_ms <= figures.p99_ms && figures.p99_ms <= figures.max_ms);
        let keys: std::collections::HashSet<&String> = seen.iter().map(|(_, k)| k).collect();
        assert_eq!(keys.len(), seen.len(), "a fresh Idempotency-Key per purchase");
        let used: std::collections::HashSet<&String> = seen.iter().map(|(t, _)| t).collect();
        assert_eq!(used.len(), tokens.len(), "every shopper's token is used");
    }

    #[test]
    fn only_stock_refusals_count_as_refused() {
        assert!(is_stock_refusal(br#"{"code":"SOLD_OUT","status":409}"#));
        assert!(is_stock_refusal(br#"{"code":"INSUFFICIENT_STOCK"}"#));
        assert!(!is_stock_refusal(br#"{"code":"PURCHASE_LIMIT"}"#));
        assert!(!is_stock_refusal(b"not json"));
    }
}
