//! Shoppers as a well-behaved app is written: each purchase carries an Idempotency-Key
//! and is retried with the same key on a dropped connection or a 5xx (so a retry can
//! never buy twice); every answer is counted, so a test can say what a fault cost them.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures_util::{stream, StreamExt};
use serde_json::{json, Value};

use crate::release::Release;

/// Give up on one purchase after this long (retries included).
const PURCHASE_PATIENCE: Duration = Duration::from_secs(60);

/// What a crowd met.
#[derive(Debug, Default)]
pub struct Crowd {
    /// (shopper, order id) of every 202.
    pub accepted: Vec<(i64, String)>,
    /// 4xx codes and how often.
    pub refused: BTreeMap<String, usize>,
    /// 5xx answers seen (each then retried).
    pub server_errors: usize,
    /// Connections refused, reset or timed out (each then retried).
    pub connection_errors: usize,
    /// The longest purchase, from the first try to its final answer.
    pub longest: Duration,
}

impl Crowd {
    fn record(&mut self, outcome: Outcome) {
        self.server_errors += outcome.server_errors;
        self.connection_errors += outcome.connection_errors;
        self.longest = self.longest.max(outcome.took);
        match outcome.answer {
            Ok((shopper, order)) => self.accepted.push((shopper, order)),
            Err(code) => *self.refused.entry(code).or_default() += 1,
        }
    }
}

struct Outcome {
    answer: Result<(i64, String), String>,
    server_errors: usize,
    connection_errors: usize,
    took: Duration,
}

/// Shoppers `first..first + count` each buy one unit of `sale`, `concurrency` at a
/// time.
pub async fn buy(release: &Release, sale: i64, first: i64, count: i64, concurrency: usize) -> Crowd {
    let url = release.api(&format!("/api/sales/{sale}/purchases"));
    let crowd = Arc::new(Mutex::new(Crowd::default()));
    stream::iter(first..first + count)
        .for_each_concurrent(concurrency, |shopper| {
            let (url, crowd, token) = (url.clone(), crowd.clone(), release.shopper_token(shopper));
            let client = release.client.clone();
            async move {
                let outcome = purchase(&client, &url, &token, shopper).await;
                crowd.lock().unwrap().record(outcome);
            }
        })
        .await;
    Arc::try_unwrap(crowd).unwrap().into_inner().unwrap()
}

/// Shoppers `first, first + 1, …` keep buying one unit each, `concurrency` at a time
/// with `pause` between a worker's purchases, until `going` turns false: a crowd that
/// spans a fault whatever it takes (a rollout's length is not known in advance).
pub async fn buy_while(
    release: &Release,
    sale: i64,
    first: i64,
    concurrency: i64,
    pause: Duration,
    going: Arc<std::sync::atomic::AtomicBool>,
) -> Crowd {
    use std::sync::atomic::{AtomicI64, Ordering};
    let url = release.api(&format!("/api/sales/{sale}/purchases"));
    let next = AtomicI64::new(first);
    let crowd = Mutex::new(Crowd::default());
    let worker = || async {
        while going.load(Ordering::SeqCst) {
            let shopper = next.fetch_add(1, Ordering::SeqCst);
            let outcome = purchase(&release.client, &url, &release.shopper_token(shopper), shopper).await;
            crowd.lock().unwrap().record(outcome);
            tokio::time::sleep(pause).await;
        }
    };
    futures_util::future::join_all((0..concurrency).map(|_| worker())).await;
    crowd.into_inner().unwrap()
}

async fn purchase(client: &reqwest::Client, url: &str, token: &str, shopper: i64) -> Outcome {
    let key = format!("pods-{shopper}");
    let started = Instant::now();
    let (mut server_errors, mut connection_errors) = (0, 0);
    let answer = loop {
        assert!(
            started.elapsed() < PURCHASE_PATIENCE,
            "shopper {shopper}: no final answer within {PURCHASE_PATIENCE:?}"
        );
        let sent = client
            .post(url)
            .bearer_auth(token)
            .header("idempotency-key", &key)
            .json(&json!({ "quantity": 1 }))
            .send()
            .await;
        let answer = match sent {
            Err(_) => {
                connection_errors += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            Ok(answer) => answer,
        };
        let status = answer.status().as_u16();
        let body: Value = answer.json().await.unwrap_or(Value::Null);
        match status {
            202 => break Ok((shopper, body["order_id"].as_str().expect("a 202 names its order").to_owned())),
            500..=599 => {
                server_errors += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            _ => break Err(body["code"].as_str().map(str::to_owned).unwrap_or_else(|| format!("HTTP {status}"))),
        }
    };
    Outcome { answer, server_errors, connection_errors, took: started.elapsed() }
}

/// Pays every accepted order (the PSP of the tests accepts all), retrying a dropped
/// connection or a 5xx with the same key; then waits until each order is COMPLETE.
pub async fn pay_all(release: &Release, accepted: &[(i64, String)]) -> usize {
    let retried = Arc::new(Mutex::new(0usize));
    stream::iter(accepted.iter().cloned())
        .for_each_concurrent(16, |(shopper, order)| {
            let (retried, token) = (retried.clone(), release.shopper_token(shopper));
            async move {
                let started = Instant::now();
                loop {
                    let sent = release
                        .client
                        .post(release.api(&format!("/api/payments/{order}")))
                        .bearer_auth(&token)
                        .header("idempotency-key", format!("pay-{order}"))
                        .send()
                        .await;
                    match sent.map(|a| a.status().as_u16()) {
                        Ok(200) => break,
                        // Retryable: a lost connection, a 5xx, the payment not yet made.
                        other => {
                            assert!(started.elapsed() < PURCHASE_PATIENCE, "paying {order}: {other:?}");
                            *retried.lock().unwrap() += 1;
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                    }
                }
                loop {
                    let (status, body) = release.get_api(&format!("/api/orders/{order}"), Some(&token)).await;
                    if status == 200 && body["status"] == "COMPLETE" {
                        break;
                    }
                    assert!(started.elapsed() < PURCHASE_PATIENCE, "order {order} is not COMPLETE: {status} {body}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        })
        .await;
    let n = *retried.lock().unwrap();
    n
}

/// The sale's counters: (remaining, reserved, sold); `stock = remaining + reserved +
/// sold` must hold at every read.
pub async fn counters(release: &Release, sale: i64, stock: i64) -> (i64, i64, i64) {
    let (status, body) = release.get_api(&format!("/api/sales/{sale}"), None).await;
    assert_eq!(status, 200, "{body}");
    let field = |name: &str| body[name].as_i64().unwrap_or_else(|| panic!("no {name}: {body}"));
    let counters = (field("remaining"), field("reserved"), field("sold"));
    assert_eq!(counters.0 + counters.1 + counters.2, stock, "conservation: {body}");
    counters
}

/// The sale's counters once nothing is held reserved: an order turns COMPLETE before its
/// `order.completed` event confirms the units in the stock engine (a consumer of the
/// orders topic, which a force-deleted pod makes rebalance), so the counters follow the
/// orders a moment later. Fails after a minute with the counters still held.
pub async fn settled_counters(release: &Release, sale: i64, stock: i64) -> (i64, i64, i64) {
    let started = Instant::now();
    loop {
        let now = counters(release, sale, stock).await;
        if now.1 == 0 {
            if started.elapsed() > Duration::from_secs(1) {
                eprintln!("the stock engine settled {:.1?} after the orders did", started.elapsed());
            }
            return now;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{} units still reserved a minute after every order settled: {now:?}\n{}",
            now.1,
            release.diagnose()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A steady crowd went on through a change (a rollout, an upgrade) while stock remained:
/// no 5xx, nothing refused, one order per purchase; then every purchase is paid and
/// exactly those units are sold, none reserved. The units sold.
pub async fn served_through(release: &Release, sale: i64, stock: i64, crowd: &Crowd, change: &str) -> i64 {
    assert_eq!(crowd.server_errors, 0, "shoppers saw 5xx during {change}: {crowd:?}");
    assert!(crowd.refused.is_empty(), "nothing was refused while stock remained: {:?}", crowd.refused);
    let mut orders: Vec<&String> = crowd.accepted.iter().map(|(_, order)| order).collect();
    orders.sort();
    orders.dedup();
    assert_eq!(orders.len(), crowd.accepted.len(), "one order per purchase");
    pay_all(release, &crowd.accepted).await;
    let (remaining, reserved, sold) = settled_counters(release, sale, stock).await;
    assert_eq!(
        (reserved, sold),
        (0, crowd.accepted.len() as i64),
        "every purchase is a paid order, nothing more (remaining {remaining})"
    );
    sold
}

/// Waits until at least `units` of `stock` are taken, so that a fault or an upgrade lands
/// mid-drop.
pub async fn taken(release: &Release, sale: i64, units: i64, stock: i64) {
    let started = Instant::now();
    while counters(release, sale, stock).await.0 > stock - units {
        assert!(started.elapsed() < Duration::from_secs(60), "the crowd took fewer than {units} units in a minute");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
