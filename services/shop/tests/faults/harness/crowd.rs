//! The shoppers of a fault test.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use goodsmall_platform::auth::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};

use super::{Stack, PATIENCE};

/// What the crowd saw.
#[derive(Default)]
pub struct Seen {
    /// buyer → the order id a 202 told them.
    pub told: HashMap<i64, String>,
    /// "status CODE" → how many final answers.
    pub answers: HashMap<String, usize>,
    /// Attempts that got no answer (refused, reset, timed out) or a 5xx, by what happened.
    pub failed_attempts: HashMap<String, usize>,
    /// Buyers whose purchase needed more than one attempt (cut off by a fault).
    pub retried_purchases: usize,
    /// Of those, the ones whose purchase was then accepted.
    pub accepted_after_retry: usize,
    /// Every 5xx body, for the problem-document checks.
    pub server_errors: Vec<(StatusCode, String, Value)>,
}

impl Seen {
    /// Adds what another crowd on the same sale saw (its buyers are other people).
    pub fn add(&mut self, other: Seen) {
        for (buyer, order) in other.told {
            assert!(self.told.insert(buyer, order).is_none(), "buyer {buyer} was in both crowds");
        }
        for (answer, n) in other.answers {
            *self.answers.entry(answer).or_default() += n;
        }
        for (failure, n) in other.failed_attempts {
            *self.failed_attempts.entry(failure).or_default() += n;
        }
        self.retried_purchases += other.retried_purchases;
        self.accepted_after_retry += other.accepted_after_retry;
        self.server_errors.extend(other.server_errors);
    }
}

/// Shoppers buying one unit each (the same Idempotency-Key on every retry), four in
/// five then paying, spread over the given replicas: a shopper whose replica does not
/// answer tries the next one, as a client behind a load balancer would.
pub struct Crowd {
    pub seen: Arc<Mutex<Seen>>,
    /// Purchases sent and not answered yet.
    pub in_flight: Arc<AtomicUsize>,
    tasks: tokio::task::JoinSet<()>,
}

impl Crowd {
    pub fn start(
        stack: &Stack,
        sale_id: i64,
        buyers: std::ops::Range<i64>,
        orders: Vec<String>,
        payments: Vec<String>,
    ) -> Crowd {
        let seen: Arc<Mutex<Seen>> = Arc::default();
        let in_flight: Arc<AtomicUsize> = Arc::default();
        let signer = stack.signer();
        let (orders, payments) = (Arc::new(orders), Arc::new(payments));
        let mut tasks = tokio::task::JoinSet::new();
        for buyer in buyers {
            let token = signer.issue(buyer, Role::Shopper, &format!("s{buyer}")).unwrap();
            let (client, seen, in_flight, orders, payments) =
                (stack.client.clone(), seen.clone(), in_flight.clone(), orders.clone(), payments.clone());
            tasks.spawn(async move {
                // Arrivals spread over two seconds, as at a real opening.
                tokio::time::sleep(Duration::from_millis((buyer % 50) as u64 * 40)).await;
                let path = format!("/api/sales/{sale_id}/purchases");
                in_flight.fetch_add(1, Ordering::SeqCst);
                let (status, body, retried) = post_until_answered(
                    &client,
                    &orders,
                    buyer as usize,
                    &path,
                    &token,
                    &format!("buy-{buyer}"),
                    Some(json!({ "quantity": 1 })),
                    &seen,
                )
                .await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
                {
                    let mut seen = seen.lock().unwrap();
                    *seen.answers.entry(format!("{status} {}", body["code"].as_str().unwrap_or(""))).or_default() += 1;
                    seen.retried_purchases += usize::from(retried);
                    if status == StatusCode::ACCEPTED {
                        seen.told.insert(buyer, body["order_id"].as_str().unwrap().to_owned());
                        seen.accepted_after_retry += usize::from(retried);
                    }
                }
                if status != StatusCode::ACCEPTED {
                    assert!(
                        ["SOLD_OUT", "INSUFFICIENT_STOCK"].contains(&body["code"].as_str().unwrap_or("")),
                        "{status} {body}"
                    );
                    return;
                }
                if buyer % 5 == 0 {
                    return; // never pays: expires
                }
                let order_id = body["order_id"].as_str().unwrap().to_owned();
                let path = format!("/api/payments/{order_id}");
                let deadline = Instant::now() + PATIENCE;
                loop {
                    let (status, _, _) = post_until_answered(
                        &client,
                        &payments,
                        buyer as usize,
                        &path,
                        &token,
                        &format!("pay-{order_id}"),
                        None,
                        &seen,
                    )
                    .await;
                    if status != StatusCode::NOT_FOUND || Instant::now() > deadline {
                        return; // paid, declined, or already expired
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await; // the payment is not open yet
                }
            });
        }
        Crowd { seen, in_flight, tasks }
    }

    pub fn accepted(&self) -> usize {
        self.seen.lock().unwrap().told.len()
    }

    /// Waits until at least `n` purchases were accepted.
    pub async fn wait_accepted(&self, n: usize) {
        let started = Instant::now();
        while self.accepted() < n {
            assert!(started.elapsed() < PATIENCE, "only {} purchases accepted in {PATIENCE:?}", self.accepted());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until some purchase has been sent and not yet answered, so that a fault
    /// injected right after cuts it off.
    pub async fn wait_in_flight(&self) {
        let started = Instant::now();
        while self.in_flight.load(Ordering::SeqCst) == 0 {
            assert!(started.elapsed() < PATIENCE, "no purchase was in flight in {PATIENCE:?}");
            tokio::task::yield_now().await;
        }
    }

    pub async fn finish(mut self) -> Seen {
        while let Some(done) = self.tasks.join_next().await {
            done.expect("a shopper's task panicked");
        }
        Arc::try_unwrap(self.seen).ok().expect("the crowd is done").into_inner().unwrap()
    }
}

/// POSTs until some replica answers with anything but a 5xx, with the same
/// Idempotency-Key every time, waiting as a 503 says; `true` as the third value when an
/// attempt failed first.
#[allow(clippy::too_many_arguments)]
pub async fn post_until_answered(
    client: &reqwest::Client,
    bases: &[String],
    first: usize,
    path: &str,
    token: &str,
    key: &str,
    body: Option<Value>,
    seen: &Mutex<Seen>,
) -> (StatusCode, Value, bool) {
    let deadline = Instant::now() + PATIENCE;
    let mut retried = false;
    for attempt in 0.. {
        let base = &bases[(first + attempt) % bases.len()];
        let mut request = client
            .post(format!("{base}{path}"))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .timeout(Duration::from_secs(10));
        if let Some(body) = &body {
            request = request.json(body);
        }
        // As a client should: a 503's Retry-After (at most 2 s), else a tenth of a second.
        let mut pause = Duration::from_millis(100);
        let failure = match request.send().await {
            Ok(r) if !r.status().is_server_error() => {
                let status = r.status();
                return (status, r.json().await.unwrap_or(Value::Null), retried);
            }
            Ok(r) => {
                let status = r.status();
                let retry_after = r.headers().get("retry-after").and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
                pause = retry_after.map_or(pause, |secs| Duration::from_secs(secs.min(2)));
                let content_type =
                    r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                let problem = r.json().await.unwrap_or(Value::Null);
                let what = format!("{status} {}", problem["code"].as_str().unwrap_or(""));
                seen.lock().unwrap().server_errors.push((status, content_type, problem));
                what
            }
            Err(e) if e.is_connect() => "connection refused".to_owned(),
            Err(e) if e.is_timeout() => "timed out".to_owned(),
            Err(_) => "connection lost".to_owned(),
        };
        *seen.lock().unwrap().failed_attempts.entry(failure).or_default() += 1;
        retried = true;
        assert!(Instant::now() < deadline, "{path} never answered");
        tokio::time::sleep(pause).await;
    }
    unreachable!()
}
