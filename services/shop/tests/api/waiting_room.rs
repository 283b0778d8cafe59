//! A sale's waiting room through the API, in both deployments: a crowd joins during the
//! pre-queue, nobody is admitted before the opening, places are a fair shuffle, the
//! admission keeps its rate, admitted shoppers buy until the stock is gone, then every
//! waiting shopper is told SOLD_OUT; admissions cannot be forged, lent or reused on
//! another sale.

use std::{collections::HashMap, sync::Arc, time::Instant};

use reqwest::{Method, Response, StatusCode};
use serde_json::{json, Value};
use tokio::task::JoinSet;

use crate::{
    catalogue::create_product,
    helpers::{assert_problem, assert_status, TestShop},
};

/// The whole crowd joins from the test's one address.
const CROWD_FROM_ONE_ADDRESS: &[(&str, &str)] = &[
    ("GOODSMALL_PAYMENT__SIMULATED_PSP__FAILURE_RATE", "0"),
    ("GOODSMALL_PAYMENT__SIMULATED_PSP__LATENCY_MILLIS", "0"),
    ("GOODSMALL_ORDER__QUEUE_JOINS_PER_ADDRESS_PER_MINUTE", "100000"),
];

// Sized so that the test takes about a minute beside the others on 2 cores: the polling
// rounds cost shoppers × rounds, and the admission lasts STOCK / RATE seconds.
const SHOPPERS: i64 = 2_000;
const STOCK: i64 = 500;
const RATE: i64 = 100;

impl TestShop {
    /// A sale of `stock` units with a waiting room, opening in `opens_in_secs`.
    async fn queued_drop(&self, merchant: &str, stock: i64, opens_in_secs: i64, admission: Value) -> i64 {
        let product = create_product(self, merchant, "Queued Lightstick", 10 * stock).await["id"].as_i64().unwrap();
        let opens_at = chrono::Utc::now() + chrono::Duration::seconds(opens_in_secs);
        let sale = json!({
            "product_id": product, "stock": stock, "price": "49.00", "per_user_limit": 1,
            "opens_at": opens_at.to_rfc3339(), "closes_at": (opens_at + chrono::Duration::hours(1)).to_rfc3339(),
            "admission": admission,
        });
        let created = assert_status(self.post("/api/sales", Some(merchant), sale).await, StatusCode::CREATED).await;
        created["id"].as_i64().unwrap()
    }

    async fn join_queue(&self, token: &str, sale: i64) -> Response {
        self.call(Method::POST, &format!("/api/sales/{sale}/queue"), Some(token), None).await
    }

    /// The shopper's ticket. A 503 (the shop gives up on a Redis command after a second,
    /// which a crowd on a loaded 2-core machine can cost) is asked again after its
    /// Retry-After, as a client does; five in a row fail the test.
    async fn queue_ticket(&self, token: &str, sale: i64) -> Value {
        let path = format!("/api/sales/{sale}/queue");
        for _ in 0..5 {
            let response = self.get(&path, Some(token)).await;
            if response.status() != StatusCode::SERVICE_UNAVAILABLE {
                return assert_status(response, StatusCode::OK).await;
            }
            let retry_after = response.headers()[reqwest::header::RETRY_AFTER].to_str().unwrap().parse().unwrap();
            assert_problem(response, StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE").await;
            tokio::time::sleep(std::time::Duration::from_secs(retry_after)).await;
        }
        panic!("GET {path} answered 503 five times in a row")
    }

    async fn buy_admitted(&self, token: &str, sale: i64, admission: Option<&str>) -> Response {
        let mut request = self
            .client
            .post(self.url(&format!("/api/sales/{sale}/purchases")))
            .bearer_auth(token)
            .header("Idempotency-Key", uuid::Uuid::new_v4().to_string())
            .json(&json!({ "quantity": 1 }));
        if let Some(admission) = admission {
            request = request.header("Admission-Token", admission);
        }
        request.send().await.unwrap()
    }

    async fn queue_counts(&self, sale: i64) -> Value {
        let view = assert_status(self.get(&format!("/api/sales/{sale}"), None).await, StatusCode::OK).await;
        view["queue"].clone()
    }
}

/// `f` for every shopper, 64 at a time; the answers in shopper order.
async fn for_each_shopper<T: Send + 'static>(
    shop: &Arc<TestShop>,
    tokens: &Arc<Vec<String>>,
    f: impl Fn(Arc<TestShop>, String) -> std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>
        + Send
        + Sync
        + 'static,
) -> Vec<T> {
    let f = Arc::new(f);
    let in_flight = Arc::new(tokio::sync::Semaphore::new(64));
    let mut tasks = JoinSet::new();
    for (i, token) in tokens.iter().enumerate() {
        let (shop, f, in_flight, token) = (shop.clone(), f.clone(), in_flight.clone(), token.clone());
        tasks.spawn(async move {
            let _slot = in_flight.acquire_owned().await.unwrap();
            (i, f(shop, token).await)
        });
    }
    let mut answers: Vec<(usize, T)> = tasks.join_all().await;
    answers.sort_by_key(|(i, _)| *i);
    answers.into_iter().map(|(_, t)| t).collect()
}

/// Spearman's rank correlation of join order and place (about 0 for a shuffle: its
/// standard deviation is 1/√(n−1) ≈ 0.022 for 2,000; exactly 1 for arrival order).
fn rank_correlation(places: &[u64]) -> f64 {
    let n = places.len() as f64;
    let d2: f64 = places.iter().enumerate().map(|(i, &p)| (i as f64 + 1.0 - p as f64).powi(2)).sum();
    1.0 - 6.0 * d2 / (n * (n * n - 1.0))
}

async fn a_crowd_is_admitted_fairly_at_the_rate_until_the_stock_is_gone(shop: TestShop) {
    let shop = Arc::new(shop);
    let merchant = shop.merchant().await;
    let admission =
        json!({ "mode": "QUEUE", "pre_queue_seconds": 600, "admit_per_second": RATE, "turn_ttl_seconds": 120 });
    // Time enough for the crowd to join on a busy machine (the opening is then awaited).
    let sale = shop.queued_drop(&merchant, STOCK, 30, admission).await;
    let joining = Instant::now();
    let tokens: Arc<Vec<String>> = Arc::new((1..=SHOPPERS).map(|user| shop.minted_shopper(100_000 + user)).collect());

    // Joining during the pre-queue, in waves (join order = shopper order): no place yet.
    let joined = for_each_shopper(&shop, &tokens, move |shop, token| {
        Box::pin(async move { assert_status(shop.join_queue(&token, sale).await, StatusCode::OK).await })
    })
    .await;
    let joining = joining.elapsed();
    for ticket in &joined {
        let pre_queue = ticket["state"] == "PRE_QUEUE" && ticket["position"].is_null();
        assert!(pre_queue, "joined in {joining:?}, the sale opened meanwhile: {ticket}");
    }
    let again = assert_status(shop.join_queue(&tokens[0], sale).await, StatusCode::OK).await;
    assert_eq!(again["state"], "PRE_QUEUE", "a second join is the same ticket");
    assert_eq!(shop.queue_counts(sale).await["joined"], SHOPPERS, "one place per account");
    assert_problem(shop.buy_admitted(&tokens[0], sale, None).await, StatusCode::CONFLICT, "SALE_NOT_OPEN").await;
    let opens_at: chrono::DateTime<chrono::Utc> = joined[0]["opens_at"].as_str().unwrap().parse().unwrap();
    let to_opening = (opens_at - chrono::Utc::now()).to_std().expect("the crowd joined before the opening");
    assert_eq!(shop.queue_counts(sale).await["admitted"], 0, "nobody is admitted before the opening");
    tokio::time::sleep(to_opening).await; // the opening is a set instant: nothing to await but the clock

    // The admission keeps its rate while nobody buys (there is stock for every turn):
    // measured over two seconds of the clock.
    let first = shop.queue_counts(sale).await;
    let first_at = Instant::now();
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let second = shop.queue_counts(sale).await;
    let elapsed = first_at.elapsed().as_secs_f64();
    let rate = (second["admitted"].as_f64().unwrap() - first["admitted"].as_f64().unwrap()) / elapsed;
    assert!((rate - RATE as f64).abs() <= 0.1 * RATE as f64, "admitted {rate:.1}/s for {RATE}/s: {first} {second}");

    // The places are a permutation, uncorrelated with the join order.
    let places = for_each_shopper(&shop, &tokens, move |shop, token| {
        Box::pin(async move { shop.queue_ticket(&token, sale).await })
    })
    .await;
    let mut numbers: Vec<u64> = Vec::new();
    for ticket in &places {
        assert!(["WAITING", "ADMITTED"].contains(&ticket["state"].as_str().unwrap()), "{ticket}");
        numbers.push(ticket["queue_number"].as_u64().unwrap());
    }
    let mut sorted = numbers.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (1..=SHOPPERS as u64).collect::<Vec<_>>(), "the numbers are a permutation");
    let rho = rank_correlation(&numbers);
    let four_sigma = 4.0 / ((numbers.len() - 1) as f64).sqrt();
    assert!(rho.abs() < four_sigma, "places follow the join order: ρ = {rho}");
    let arrival: Vec<u64> = (1..=numbers.len() as u64).collect();
    assert!(rank_correlation(&arrival) > 0.99, "the statistic would catch arrival order");

    // Admitted shoppers buy in their turn until the stock is gone.
    let mut bought: HashMap<usize, String> = HashMap::new();
    loop {
        let answers = for_each_shopper(&shop, &tokens, move |shop, token| {
            Box::pin(async move {
                let ticket = shop.queue_ticket(&token, sale).await;
                if ticket["state"] != "ADMITTED" {
                    return (ticket, None);
                }
                let admission = ticket["admission"]["token"].as_str().unwrap().to_owned();
                let response = shop.buy_admitted(&token, sale, Some(&admission)).await;
                let status = response.status();
                let body: Value = response.json().await.unwrap();
                if status == StatusCode::ACCEPTED {
                    let paid = shop.pay_when_due(&token, body["order_id"].as_str().unwrap()).await;
                    assert!(paid.status().is_success(), "paying: {}", paid.status());
                }
                (ticket, Some((status, body)))
            })
        })
        .await;
        for (i, (_, purchase)) in answers.iter().enumerate() {
            match purchase {
                Some((StatusCode::ACCEPTED, body)) => {
                    bought.insert(i, body["order_id"].as_str().unwrap().to_owned());
                }
                // An admitted shopper who already bought has reached the limit of 1.
                Some((_, body)) if body["code"] == "PURCHASE_LIMIT" && bought.contains_key(&i) => {}
                Some((_, body)) if body["code"] == "SOLD_OUT" => {}
                Some(other) => panic!("an admitted purchase: {other:?}"),
                None => {}
            }
        }
        if answers.iter().any(|(t, _)| t["state"] == "SOLD_OUT") {
            break;
        }
        assert!(bought.len() <= STOCK as usize);
    }
    assert_eq!(bought.len(), STOCK as usize, "every unit went to an admitted shopper");
    shop.sale_settles_at(sale, 0, STOCK).await;

    // Sold out for good: one round of polls tells every waiting shopper at once.
    let told_at = Instant::now();
    let last = for_each_shopper(&shop, &tokens, move |shop, token| {
        Box::pin(async move { shop.queue_ticket(&token, sale).await["state"].as_str().unwrap().to_owned() })
    })
    .await;
    let round = told_at.elapsed();
    for (i, state) in last.iter().enumerate() {
        let expected = if bought.contains_key(&i) { ["ADMITTED", "EXPIRED"] } else { ["SOLD_OUT", "EXPIRED"] };
        assert!(expected.contains(&state.as_str()), "shopper {i}: {state}");
    }
    assert!(last.iter().filter(|s| *s == "SOLD_OUT").count() >= SHOPPERS as usize - 2 * STOCK as usize);
    assert!(round.as_secs_f64() < 60.0, "a round of polls took {round:?}");
    let counters = shop.settled_sale(sale).await;
    assert_eq!((counters["remaining"].as_i64(), counters["sold"].as_i64()), (Some(0), Some(STOCK)), "{counters}");
}

async fn an_admission_is_the_shoppers_own_for_this_sale_and_its_turn(shop: TestShop) {
    let merchant = shop.merchant().await;
    let fast = json!({ "mode": "QUEUE", "pre_queue_seconds": 0, "admit_per_second": 100, "turn_ttl_seconds": 10 });
    let sale = shop.queued_drop(&merchant, 10, 0, fast.clone()).await;
    let other_sale = shop.queued_drop(&merchant, 10, 0, fast).await;
    let (alice, bob) = (shop.minted_shopper(201), shop.minted_shopper(202));
    let ends_of = |ticket: &Value| -> chrono::DateTime<chrono::Utc> {
        ticket["admission"]["expires_at"].as_str().unwrap().parse().unwrap()
    };
    for token in [&alice, &bob] {
        assert_status(shop.join_queue(token, sale).await, StatusCode::OK).await;
        assert_status(shop.join_queue(token, other_sale).await, StatusCode::OK).await;
    }
    let ticket = shop.eventually(&format!("/api/sales/{sale}/queue"), Some(&alice), |t| t["state"] == "ADMITTED").await;
    let admission = ticket["admission"]["token"].as_str().unwrap().to_owned();
    let bobs = shop.eventually(&format!("/api/sales/{sale}/queue"), Some(&bob), |t| t["state"] == "ADMITTED").await;

    assert_problem(shop.buy_admitted(&alice, sale, None).await, StatusCode::FORBIDDEN, "ADMISSION_REQUIRED").await;
    let mut forged = admission.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    for (token, admission, sale, what) in [
        (&alice, forged.as_str(), sale, "a forged signature"),
        (&bob, admission.as_str(), sale, "another account's admission"),
        (&alice, admission.as_str(), other_sale, "another sale's admission"),
        (&alice, "not-an-admission", sale, "garbage"),
    ] {
        let refused = shop.buy_admitted(token, sale, Some(admission)).await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{what}");
        assert_eq!(refused.json::<Value>().await.unwrap()["code"], "ADMISSION_INVALID", "{what}");
    }
    let key = "alice-first";
    let with_key = |key: &'static str| {
        shop.client
            .post(shop.url(&format!("/api/sales/{sale}/purchases")))
            .bearer_auth(&alice)
            .header("Idempotency-Key", key)
            .header("Admission-Token", &admission)
            .json(&json!({ "quantity": 1 }))
    };
    let first = assert_status(with_key(key).send().await.unwrap(), StatusCode::ACCEPTED).await;
    // After the turn, a retry still gets its order; a new purchase is refused.
    let turns_end = ends_of(&ticket).max(ends_of(&bobs)) + chrono::Duration::milliseconds(5);
    tokio::time::sleep((turns_end - chrono::Utc::now()).to_std().unwrap_or_default()).await; // a turn is a set instant
    let retry = assert_status(with_key(key).send().await.unwrap(), StatusCode::ACCEPTED).await;
    assert_eq!(retry["order_id"], first["order_id"]);
    assert_problem(with_key("alice-second").send().await.unwrap(), StatusCode::FORBIDDEN, "ADMISSION_EXPIRED").await;
    let ticket = shop.queue_ticket(&bob, sale).await;
    assert_eq!(ticket["state"], "EXPIRED", "bob let his turn pass: {ticket}");
    // The sale without a queue, and a shopper who never joined.
    let (_, plain) = shop.drop_of(&merchant, 5, 1, 0).await;
    assert_problem(shop.join_queue(&alice, plain).await, StatusCode::CONFLICT, "NO_WAITING_ROOM").await;
    let carol = shop.minted_shopper(203);
    assert_problem(
        shop.get(&format!("/api/sales/{sale}/queue"), Some(&carol)).await,
        StatusCode::NOT_FOUND,
        "NOT_IN_QUEUE",
    )
    .await;
    assert_problem(shop.join_queue(&carol, 999_999).await, StatusCode::NOT_FOUND, "SALE_NOT_FOUND").await;
    // One address joins one sale 20 times a minute (alice and bob were 2 of them).
    let mut joined = 0;
    let refused = loop {
        let response = shop.join_queue(&shop.minted_shopper(300 + joined), other_sale).await;
        if response.status() != StatusCode::OK {
            break response;
        }
        joined += 1;
        assert!(joined <= 18, "the address keeps joining");
    };
    assert_eq!(joined, 18);
    let wait: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
    assert_problem(refused, StatusCode::TOO_MANY_REQUESTS, "TOO_MANY_ATTEMPTS").await;
    // A shopper already in the queue is answered, whatever the address did.
    let again = assert_status(shop.join_queue(&alice, other_sale).await, StatusCode::OK).await;
    assert!(["ADMITTED", "EXPIRED"].contains(&again["state"].as_str().unwrap()), "{again}");
}

crate::in_both_modes!(settings = crate::waiting_room::CROWD_FROM_ONE_ADDRESS;
    a_crowd_is_admitted_fairly_at_the_rate_until_the_stock_is_gone);

mod one_address {
    use super::an_admission_is_the_shoppers_own_for_this_sale_and_its_turn;
    crate::in_both_modes!(settings = crate::drop_helpers::RELIABLE_PSP;
        an_admission_is_the_shoppers_own_for_this_sale_and_its_turn);
}
