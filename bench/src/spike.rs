//! `spike` and `pay`: the moment a real drop looks like.
//!
//! `spike` sends one purchase per shopper, open loop: ARRIVALS shoppers arriving evenly
//! over OVER_MILLIS from the sale's opening, each at its own moment whatever the shop's
//! answers (a slow shop does not slow the arrivals down, as with k6's arrival-rate
//! executors). Latency is counted from the moment a shopper was due to arrive, so a
//! generator that falls behind shows as latency, and its own lag is reported. At most
//! CONNECTIONS requests are in flight, each on a kept-alive connection (k6's VUs): a
//! shopper who finds them all busy waits for one, and the wait is part of the latency.
//! (One connection per shopper would open 20,000 sockets in 2 s; the shop runs out of
//! file descriptors and stops accepting, which measures the machine, not the shop.) The
//! connections are opened before the opening, as an ingress's upstream pool is. The
//! accepted orders go to a file for `pay`, which pays each of them with its buyer's token
//! (the simulated PSP declines its configured share).

use std::{path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context;
use clap::Args;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::crowd::{read_tokens, SaleCrowd};

#[derive(Args)]
pub struct SpikeArgs {
    /// The sale; one arriving shopper per token, in order.
    #[command(flatten)]
    pub crowd: SaleCrowd,
    /// How many shoppers arrive (at most the number of tokens; default: all of them).
    #[arg(long)]
    pub arrivals: Option<usize>,
    /// Over how long they arrive, evenly spaced.
    #[arg(long, default_value_t = 2000)]
    pub over_millis: u64,
    /// The sale's opening (RFC 3339): the first shopper arrives then. Default: now.
    #[arg(long)]
    pub opens_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Requests in flight at most, each on its own kept-alive connection.
    #[arg(long, default_value_t = 1000)]
    pub connections: usize,
    /// How long a shopper waits for an answer before it counts as unanswered.
    #[arg(long, default_value_t = 30)]
    pub timeout_secs: u64,
    /// Where the figures go (JSON, for `report --spike-summary`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Where the accepted orders go (JSON, for `pay`).
    #[arg(long)]
    pub orders_out: Option<PathBuf>,
}

/// One accepted purchase: the order and the index of its buyer's token.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct AcceptedOrder {
    pub order_id: String,
    pub shopper: usize,
}

/// What a spike measured; `report --spike-summary` reads it.
#[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct SpikeFigures {
    pub arrivals: u64,
    pub over_millis: u64,
    #[serde(default)]
    pub connections: u64,
    pub accepted: u64,
    /// 409 SOLD_OUT / INSUFFICIENT_STOCK.
    pub refused: u64,
    /// Answered, but neither accepted nor refused for stock (4xx of another kind).
    pub other: u64,
    pub server_errors: u64,
    /// No answer at all: connection errors and timeouts.
    pub unanswered: u64,
    pub accepted_p50_ms: f64,
    pub accepted_p99_ms: f64,
    pub accepted_max_ms: f64,
    pub refused_p50_ms: f64,
    pub refused_p99_ms: f64,
    pub refused_max_ms: f64,
    /// When the last accepted purchase was answered, from the opening.
    pub last_accepted_ms: f64,
    /// When the first SOLD_OUT/INSUFFICIENT_STOCK answer came, from the opening.
    pub first_refused_ms: Option<f64>,
    /// When the last answer came, from the opening.
    pub last_answer_ms: f64,
    /// How far behind its schedule the generator sent a shopper, at worst.
    pub max_send_lag_ms: f64,
}

impl SpikeFigures {
    pub fn answered(&self) -> u64 {
        self.accepted + self.refused + self.other + self.server_errors
    }
}

/// One shopper's purchase, as seen by the generator.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Outcome {
    Accepted,
    Refused,
    Other,
    ServerError,
    Unanswered,
}

struct Arrival {
    outcome: Outcome,
    /// From the shopper's due moment to the answer.
    latency_us: u64,
    /// From the opening to the answer.
    answered_at_us: u64,
    order_id: Option<String>,
}

/// Opens the kept-alive connections before the opening, each with a look at the sale
/// (as a shopper's page does while it counts down): in a cluster the shop's connections
/// come from the ingress's upstream pool, already open when a drop starts, so the
/// spike measures purchases, not 1,000 TCP handshakes in its first milliseconds. A look
/// answered 503 is asked again after its Retry-After, as a page would (a loaded machine
/// can hold a stock-store read past the shop's one-second limit); a fifth 503 fails.
async fn open_connections(client: &reqwest::Client, sale_url: &str, connections: usize) -> anyhow::Result<()> {
    const ATTEMPTS: u32 = 5;
    let mut looks = tokio::task::JoinSet::new();
    for _ in 0..connections {
        let (client, sale_url) = (client.clone(), sale_url.to_owned());
        looks.spawn(async move {
            let mut attempt = 1;
            loop {
                let answer = client.get(&sale_url).send().await?;
                if answer.status() != reqwest::StatusCode::SERVICE_UNAVAILABLE || attempt == ATTEMPTS {
                    return answer.error_for_status()?.bytes().await;
                }
                let retry_after = answer.headers().get(reqwest::header::RETRY_AFTER);
                let secs = retry_after.and_then(|v| v.to_str().ok()?.parse::<u64>().ok()).unwrap_or(1);
                tokio::time::sleep(Duration::from_secs(secs.min(5))).await;
                attempt += 1;
            }
        });
    }
    while let Some(look) = looks.join_next().await {
        look?.with_context(|| format!("opening the connections: GET {sale_url}"))?;
    }
    Ok(())
}

pub async fn run(args: SpikeArgs) -> anyhow::Result<bool> {
    let tokens = args.crowd.tokens()?;
    let arrivals = args.arrivals.unwrap_or(tokens.len());
    anyhow::ensure!(
        arrivals >= 1 && arrivals <= tokens.len(),
        "--arrivals must be between 1 and the number of tokens ({})",
        tokens.len()
    );
    anyhow::ensure!(args.connections >= 1, "--connections must be at least 1");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(args.timeout_secs))
        .pool_max_idle_per_host(args.connections)
        .pool_idle_timeout(Duration::from_secs(60))
        .build()?;
    let in_flight = Arc::new(tokio::sync::Semaphore::new(args.connections));
    let url = Arc::new(args.crowd.sale_url("/purchases"));
    open_connections(&client, &args.crowd.sale_url(""), args.connections).await?;
    if let Some(opens_at) = args.opens_at {
        let wait = (opens_at - chrono::Utc::now()).to_std().unwrap_or_default();
        eprintln!(
            "spike: {arrivals} shoppers over {} ms from the opening, in {:.1} s",
            args.over_millis,
            wait.as_secs_f64()
        );
        tokio::time::sleep(wait).await;
    }
    let opening = Instant::now();
    let spacing = Duration::from_secs_f64(args.over_millis as f64 / 1000.0 / arrivals as f64);
    let mut tasks = Vec::with_capacity(arrivals);
    let mut max_lag = Duration::ZERO;
    for (shopper, token) in tokens.iter().take(arrivals).enumerate() {
        let due = opening + spacing * shopper as u32;
        tokio::time::sleep_until(due).await;
        max_lag = max_lag.max(due.elapsed());
        let (client, url, token, in_flight) = (client.clone(), url.clone(), token.clone(), in_flight.clone());
        tasks.push(tokio::spawn(async move {
            let _connection = in_flight.acquire_owned().await;
            let answer = client
                .post(url.as_str())
                .bearer_auth(token)
                .header("Idempotency-Key", format!("spike-{shopper}-{}", uuid::Uuid::new_v4().simple()))
                .header("Content-Type", "application/json")
                .body(r#"{"quantity":1}"#)
                .send()
                .await;
            let (outcome, order_id) = match answer {
                Err(_) => (Outcome::Unanswered, None),
                Ok(response) => {
                    let status = response.status().as_u16();
                    match response.bytes().await {
                        Err(_) => (Outcome::Unanswered, None),
                        Ok(body) => classify(status, &body),
                    }
                }
            };
            Arrival {
                outcome,
                latency_us: due.elapsed().as_micros() as u64,
                answered_at_us: opening.elapsed().as_micros() as u64,
                order_id,
            }
        }));
    }
    let mut answers = Vec::with_capacity(arrivals);
    for task in tasks {
        answers.push(task.await?);
    }
    let mut figures = summarise(&answers, args.over_millis, max_lag);
    figures.connections = args.connections as u64;
    let orders: Vec<AcceptedOrder> = answers
        .iter()
        .enumerate()
        .filter_map(|(shopper, a)| a.order_id.clone().map(|order_id| AcceptedOrder { order_id, shopper }))
        .collect();
    println!(
        "goodsmall-bench spike: {} shoppers over {} ms on {} connections: \
         {} accepted (p50 {:.1} ms, p99 {:.1} ms), {} refused (p50 {:.1} ms, p99 {:.1} ms), {} other, {} 5xx, \
         {} unanswered; last 202 at +{:.0} ms, first SOLD_OUT at +{}, last answer at +{:.0} ms; \
         generator at most {:.1} ms behind",
        figures.arrivals,
        figures.over_millis,
        figures.connections,
        figures.accepted,
        figures.accepted_p50_ms,
        figures.accepted_p99_ms,
        figures.refused,
        figures.refused_p50_ms,
        figures.refused_p99_ms,
        figures.other,
        figures.server_errors,
        figures.unanswered,
        figures.last_accepted_ms,
        figures.first_refused_ms.map_or("-".into(), |ms| format!("{ms:.0} ms")),
        figures.last_answer_ms,
        figures.max_send_lag_ms
    );
    if let Some(out) = &args.out {
        std::fs::write(out, serde_json::to_vec_pretty(&figures)?)
            .with_context(|| format!("writing {}", out.display()))?;
    }
    if let Some(out) = &args.orders_out {
        std::fs::write(out, serde_json::to_vec(&orders)?).with_context(|| format!("writing {}", out.display()))?;
    }
    Ok(figures.server_errors == 0 && figures.unanswered == 0)
}

fn classify(status: u16, body: &[u8]) -> (Outcome, Option<String>) {
    let json = serde_json::from_slice::<serde_json::Value>(body).unwrap_or_default();
    match status {
        202 => (Outcome::Accepted, json["order_id"].as_str().map(str::to_owned)),
        409 if matches!(json["code"].as_str(), Some("SOLD_OUT" | "INSUFFICIENT_STOCK")) => (Outcome::Refused, None),
        500.. => (Outcome::ServerError, None),
        _ => (Outcome::Other, None),
    }
}

/// Nearest-rank quantile of sorted µs values, in ms (0 when there are none).
fn quantile(sorted_us: &[u64], q: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted_us.len() as f64).ceil() as usize).clamp(1, sorted_us.len());
    sorted_us[rank - 1] as f64 / 1000.0
}

fn summarise(answers: &[Arrival], over_millis: u64, max_lag: Duration) -> SpikeFigures {
    let latencies = |kind: Outcome| {
        let mut l: Vec<u64> = answers.iter().filter(|a| a.outcome == kind).map(|a| a.latency_us).collect();
        l.sort_unstable();
        l
    };
    let (accepted, refused) = (latencies(Outcome::Accepted), latencies(Outcome::Refused));
    let count = |kind: Outcome| answers.iter().filter(|a| a.outcome == kind).count() as u64;
    let answered_at = |kind: Option<Outcome>| {
        answers.iter().filter(move |a| kind.is_none_or(|k| a.outcome == k) && a.outcome != Outcome::Unanswered)
    };
    SpikeFigures {
        arrivals: answers.len() as u64,
        over_millis,
        connections: 0,
        accepted: accepted.len() as u64,
        refused: refused.len() as u64,
        other: count(Outcome::Other),
        server_errors: count(Outcome::ServerError),
        unanswered: count(Outcome::Unanswered),
        accepted_p50_ms: quantile(&accepted, 0.50),
        accepted_p99_ms: quantile(&accepted, 0.99),
        accepted_max_ms: quantile(&accepted, 1.0),
        refused_p50_ms: quantile(&refused, 0.50),
        refused_p99_ms: quantile(&refused, 0.99),
        refused_max_ms: quantile(&refused, 1.0),
        last_accepted_ms: answered_at(Some(Outcome::Accepted)).map(|a| a.answered_at_us).max().unwrap_or(0) as f64
            / 1000.0,
        first_refused_ms: answered_at(Some(Outcome::Refused))
            .map(|a| a.answered_at_us)
            .min()
            .map(|us| us as f64 / 1000.0),
        last_answer_ms: answered_at(None).map(|a| a.answered_at_us).max().unwrap_or(0) as f64 / 1000.0,
        max_send_lag_ms: max_lag.as_secs_f64() * 1000.0,
    }
}

#[derive(Args)]
pub struct PayArgs {
    #[arg(long, env = "BASE_URL", default_value = "http://127.0.0.1:8080")]
    pub base_url: String,
    /// The accepted orders (`spike --orders-out`).
    #[arg(long)]
    pub orders_file: PathBuf,
    /// The tokens the spike used (each order is paid by its buyer).
    #[arg(long)]
    pub tokens_file: PathBuf,
    /// Payments in flight at once.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Where the figures go (JSON, for `report --pay-summary`).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// What paying the accepted orders measured.
#[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct PayFigures {
    pub orders: u64,
    /// 200: charged, the order completes.
    pub paid: u64,
    /// 402 PAYMENT_DECLINED: the order fails and its unit goes back on sale.
    pub declined: u64,
    /// Any other answer, or none.
    pub unexpected: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub seconds: f64,
}

pub async fn pay(args: PayArgs) -> anyhow::Result<bool> {
    let tokens = read_tokens(&args.tokens_file)?;
    let text = std::fs::read_to_string(&args.orders_file)
        .with_context(|| format!("reading {}", args.orders_file.display()))?;
    let orders: Vec<AcceptedOrder> = serde_json::from_str(&text).context("the orders file is `spike --orders-out`")?;
    anyhow::ensure!(orders.iter().all(|o| o.shopper < tokens.len()), "an order's shopper has no token");
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
    let base = args.base_url.trim_end_matches('/').to_owned();
    let started = Instant::now();
    let queue = Arc::new(std::sync::Mutex::new(orders.into_iter().collect::<std::collections::VecDeque<_>>()));
    let total = queue.lock().map(|q| q.len()).unwrap_or(0) as u64;
    let tokens = Arc::new(tokens);
    let mut workers = Vec::new();
    for _ in 0..args.concurrency.max(1) {
        let (client, base, queue, tokens) = (client.clone(), base.clone(), queue.clone(), tokens.clone());
        workers.push(tokio::spawn(async move {
            let mut seen: Vec<(u16, u64)> = Vec::new();
            // The lock is taken and released inside `next`, never held across an await.
            let next = || queue.lock().ok().and_then(|mut q| q.pop_front());
            while let Some(order) = next() {
                let sent = Instant::now();
                let status = client
                    .post(format!("{base}/api/payments/{}", order.order_id))
                    .bearer_auth(&tokens[order.shopper])
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0);
                seen.push((status, sent.elapsed().as_micros() as u64));
            }
            seen
        }));
    }
    let mut figures = PayFigures { orders: total, ..PayFigures::default() };
    let mut latencies = Vec::new();
    for worker in workers {
        for (status, us) in worker.await? {
            match status {
                200 => figures.paid += 1,
                402 => figures.declined += 1,
                _ => figures.unexpected += 1,
            }
            latencies.push(us);
        }
    }
    latencies.sort_unstable();
    figures.p50_ms = quantile(&latencies, 0.5);
    figures.p99_ms = quantile(&latencies, 0.99);
    figures.seconds = started.elapsed().as_secs_f64();
    println!(
        "goodsmall-bench pay: {} orders: {} paid, {} declined, {} unexpected; p50 {:.1} ms, p99 {:.1} ms",
        figures.orders, figures.paid, figures.declined, figures.unexpected, figures.p50_ms, figures.p99_ms
    );
    if let Some(out) = &args.out {
        std::fs::write(out, serde_json::to_vec_pretty(&figures)?)
            .with_context(|| format!("writing {}", out.display()))?;
    }
    Ok(figures.unexpected == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arrival(outcome: Outcome, latency_ms: u64, at_ms: u64) -> Arrival {
        Arrival {
            outcome,
            latency_us: latency_ms * 1000,
            answered_at_us: at_ms * 1000,
            order_id: (outcome == Outcome::Accepted).then(|| format!("o-{at_ms}")),
        }
    }

    #[test]
    fn answers_are_classified_and_summarised_per_kind() {
        assert_eq!(classify(202, br#"{"order_id":"a"}"#), (Outcome::Accepted, Some("a".into())));
        assert_eq!(classify(409, br#"{"code":"SOLD_OUT"}"#).0, Outcome::Refused);
        assert_eq!(classify(409, br#"{"code":"PURCHASE_LIMIT"}"#).0, Outcome::Other);
        assert_eq!(classify(503, b"").0, Outcome::ServerError);
        let answers = vec![
            arrival(Outcome::Accepted, 10, 10),
            arrival(Outcome::Accepted, 30, 40),
            arrival(Outcome::Refused, 5, 35),
            arrival(Outcome::Refused, 7, 60),
            arrival(Outcome::Unanswered, 30_000, 30_000),
        ];
        let f = summarise(&answers, 2000, Duration::from_millis(3));
        assert_eq!((f.arrivals, f.accepted, f.refused, f.unanswered, f.answered()), (5, 2, 2, 1, 4));
        assert_eq!((f.accepted_p50_ms, f.accepted_p99_ms, f.refused_p99_ms), (10.0, 30.0, 7.0));
        assert_eq!((f.last_accepted_ms, f.first_refused_ms, f.last_answer_ms), (40.0, Some(35.0), 60.0));
        assert_eq!(f.max_send_lag_ms, 3.0);
    }
}
