//! The drop of `drop.rs` with a waiting room, served by pods: shoppers join during the
//! pre-queue through the order Service, nobody is admitted before the opening, places
//! are a permutation, admitted shoppers buy until the stock is gone (every one of them
//! gets an order until then, unless their turn ran out first), everyone else is told
//! SOLD_OUT, every order is paid.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use futures_util::{stream, StreamExt};
use serde_json::{json, Value};

use crate::{
    release::Release,
    shoppers::{self, settled_counters},
};

const STOCK: i64 = 100;
const SHOPPERS: i64 = 300;
const FIRST: i64 = 5_000;

/// One round: every shopper polls; an admitted one buys (once). Returns each shopper's
/// state and the orders made this round.
async fn round(release: &Release, sale: i64, bought: &BTreeMap<i64, String>) -> (Vec<String>, Vec<(i64, String)>) {
    let answers: Vec<(String, Option<(i64, String)>)> = stream::iter(FIRST..FIRST + SHOPPERS)
        .map(|shopper| async move {
            let token = release.shopper_token(shopper);
            let (status, ticket) = release.get_api(&format!("/api/sales/{sale}/queue"), Some(&token)).await;
            assert_eq!(status, 200, "shopper {shopper}'s place: {ticket}");
            let state = ticket["state"].as_str().unwrap().to_owned();
            if state != "ADMITTED" || bought.contains_key(&shopper) {
                return (state, None);
            }
            let admission = ticket["admission"]["token"].as_str().unwrap();
            let turn_ends: DateTime<Utc> = ticket["admission"]["expires_at"].as_str().unwrap().parse().unwrap();
            let answer = release
                .client
                .post(release.api(&format!("/api/sales/{sale}/purchases")))
                .bearer_auth(&token)
                .header("admission-token", admission)
                .header("idempotency-key", format!("queued-{shopper}"))
                .json(&json!({ "quantity": 1 }))
                .send()
                .await
                .expect("a purchase is answered");
            let status = answer.status().as_u16();
            let body: Value = answer.json().await.unwrap_or(Value::Null);
            match status {
                202 => (state, Some((shopper, body["order_id"].as_str().unwrap().to_owned()))),
                409 if body["code"] == "SOLD_OUT" || body["code"] == "INSUFFICIENT_STOCK" => (state, None),
                // The turn ran out between the poll and the purchase (a round on a busy
                // machine can take most of a turn): its unit goes to the next in line.
                403 if body["code"] == "ADMISSION_EXPIRED" && Utc::now() >= turn_ends => (state, None),
                _ => panic!("admitted shopper {shopper}'s purchase: {status} {body}"),
            }
        })
        .buffered(32)
        .collect()
        .await;
    let orders = answers.iter().filter_map(|(_, order)| order.clone()).collect();
    (answers.into_iter().map(|(state, _)| state).collect(), orders)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_drop_admits_fairly_and_sells_exactly_its_stock_on_pods() {
    // The crowd joins from the test's one address.
    let extra = ["--set", "order.queueJoinsPerAddressPerMinute=100000"];
    let (release, product) = Release::with_product("pods-queue", &extra).await;
    let opens_in = Duration::from_secs(60);
    let applied = Instant::now();
    let mut manifest =
        release.flash_sale_manifest("queued", product, STOCK, opens_in, Duration::from_secs(600), "45s", None);
    manifest.push_str("  admission:\n    mode: Queue\n    preQueue: 45s\n    admitPerSecond: 50\n    turnTTL: 60s\n");
    release.kubectl_ok(&["apply", "-f", "-"], Some(&manifest));
    let warm = release.flash_sale_until("queued", "WarmingUp", opens_in, |fs| fs["status"]["phase"] == "WarmingUp");
    let sale = warm["status"]["saleId"].as_i64().expect("the status names the sale");

    // The pre-queue: every shopper joins once, nobody has a place yet.
    let joined: Vec<Value> = stream::iter(FIRST..FIRST + SHOPPERS)
        .map(|shopper| {
            let release = &release;
            async move {
                let answer = release
                    .client
                    .post(release.api(&format!("/api/sales/{sale}/queue")))
                    .bearer_auth(release.shopper_token(shopper))
                    .send()
                    .await
                    .expect("a join is answered");
                assert_eq!(answer.status().as_u16(), 200, "shopper {shopper} joins");
                answer.json::<Value>().await.unwrap()
            }
        })
        .buffered(32)
        .collect()
        .await;
    assert!(
        joined.iter().all(|t| t["state"] == "PRE_QUEUE"),
        "{:?}",
        joined.iter().find(|t| t["state"] != "PRE_QUEUE")
    );
    let (_, view) = release.get_api(&format!("/api/sales/{sale}"), None).await;
    assert_eq!(
        (view["queue"]["joined"].as_i64(), view["queue"]["admitted"].as_i64()),
        (Some(SHOPPERS), Some(0)),
        "{view}"
    );
    release
        .flash_sale_until("queued", "Open", opens_in + Duration::from_secs(30), |fs| fs["status"]["phase"] == "Open");
    eprintln!("opened {:.1?} after opensAt", applied.elapsed().saturating_sub(opens_in));

    // Everyone's number, before anyone buys (a sold-out answer carries none).
    // (Read as the rounds are, 32 at a time: the turns of the first admitted run meanwhile.)
    let mut numbers: Vec<u64> = stream::iter(FIRST..FIRST + SHOPPERS)
        .map(|shopper| {
            let release = &release;
            async move {
                let (_, ticket) =
                    release.get_api(&format!("/api/sales/{sale}/queue"), Some(&release.shopper_token(shopper))).await;
                ticket["queue_number"].as_u64().unwrap_or_else(|| panic!("placed after the opening: {ticket}"))
            }
        })
        .buffered(32)
        .collect()
        .await;

    // Rounds of polls until the sale is sold out for everyone still waiting.
    let mut bought: BTreeMap<i64, String> = BTreeMap::new();
    let started = Instant::now();
    loop {
        let (states, orders) = round(&release, sale, &bought).await;
        for (shopper, order) in &orders {
            assert!(bought.insert(*shopper, order.clone()).is_none(), "one order per admitted shopper");
        }
        // This round's orders are paid before the next round's polls.
        shoppers::pay_all(&release, &orders).await;
        assert!(bought.len() as i64 <= STOCK, "more orders than units");
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        for state in &states {
            *seen.entry(state.as_str()).or_default() += 1;
        }
        let (_, view) = release.get_api(&format!("/api/sales/{sale}"), None).await;
        eprintln!(
            "round at {:.1?}: {seen:?}, {} bought; sale remaining {} reserved {} sold {}, queue {}",
            started.elapsed(),
            bought.len(),
            view["remaining"],
            view["reserved"],
            view["sold"],
            view["queue"]
        );
        if states.iter().any(|s| s == "SOLD_OUT") {
            break;
        }
        // A round pays its orders and waits for their sagas; the rounds needed are four or
        // so, each seconds long now that Services are not looked up per request.
        assert!(started.elapsed() < Duration::from_secs(300), "not sold out in 5 minutes: {} bought", bought.len());
    }
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=SHOPPERS as u64).collect::<Vec<_>>(), "the places are a permutation");
    assert_eq!(bought.len() as i64, STOCK, "exactly the stock went to admitted shoppers");
    assert_eq!(settled_counters(&release, sale, STOCK).await, (0, 0, STOCK), "every unit sold and paid");
    let fs =
        release.flash_sale_until("queued", "SoldOut", Duration::from_secs(60), |fs| fs["status"]["phase"] == "SoldOut");
    eprintln!(
        "queued drop: {} sold to admitted shoppers in {:.1?}; status.queue {}",
        bought.len(),
        started.elapsed(),
        fs["status"]["queue"]
    );
}
