//! Crowds at a drop: many concurrent buyers never get more than the stock, no buyer
//! more than the limit, and once every order has settled (paid, declined, cancelled
//! or expired) `stock = remaining + sold` holds in the stock engine and matches the
//! orders and the product's quantity.

use std::{collections::HashMap, sync::Arc};

use reqwest::StatusCode;
use serde_json::Value;
use tokio::task::JoinSet;

use crate::helpers::{assert_status, TestShop};

/// Nothing expires during a rush (so the counts are exact).
pub(crate) const NO_EXPIRY: &[(&str, &str)] = &[("GOODSMALL_PAYMENT__SIMULATED_PSP__LATENCY_MILLIS", "0")];

/// The original's failure rate; unpaid orders expire after 2 s.
pub(crate) const REAL_WORLD_PSP: &[(&str, &str)] = &[
    ("GOODSMALL_PAYMENT__SIMULATED_PSP__FAILURE_RATE", "0.2"),
    ("GOODSMALL_PAYMENT__SIMULATED_PSP__LATENCY_MILLIS", "5"),
    ("GOODSMALL_PAYMENT__TIMEOUT_SECS", "2"),
    ("GOODSMALL_PAYMENT__EXPIRY_TICK_MILLIS", "100"),
];

/// Every (buyer, key, quantity) attempt at once (at most 200 in flight, as a browser
/// crowd behind a load balancer would be); returns (buyer, status, body).
async fn rush(shop: &Arc<TestShop>, sale_id: i64, attempts: Vec<(i64, String, i64)>) -> Vec<(i64, StatusCode, Value)> {
    let mut tasks = JoinSet::new();
    let in_flight = Arc::new(tokio::sync::Semaphore::new(200));
    for (buyer, key, quantity) in attempts {
        let (shop, in_flight) = (shop.clone(), in_flight.clone());
        tasks.spawn(async move {
            let token = shop.minted_shopper(buyer);
            let _slot = in_flight.acquire().await.unwrap();
            let response = shop.buy(&token, sale_id, &key, quantity).await;
            let status = response.status();
            (buyer, status, response.json::<Value>().await.unwrap_or(Value::Null))
        });
    }
    tasks.join_all().await
}

async fn a_thousand_buyers_for_a_hundred_units(shop: TestShop) {
    let shop = Arc::new(shop);
    let merchant = shop.merchant().await;
    let (_, sale) = shop.drop_of(&merchant, 100, 1, 0).await;
    let answers = rush(&shop, sale, (1..=1000).map(|buyer| (buyer, format!("k{buyer}"), 1)).collect()).await;
    let accepted = answers.iter().filter(|(_, s, _)| *s == StatusCode::ACCEPTED).count();
    let refused: Vec<&str> = answers
        .iter()
        .filter(|(_, s, _)| *s != StatusCode::ACCEPTED)
        .map(|(_, _, b)| b["code"].as_str().unwrap_or("?"))
        .collect();
    let mut codes: HashMap<String, usize> = HashMap::new();
    for (_, status, body) in &answers {
        *codes.entry(format!("{status} {}", body["code"].as_str().unwrap_or(""))).or_default() += 1;
    }
    assert_eq!(accepted, 100, "exactly the stock is reserved: {codes:?}");
    assert_eq!(refused.len(), 900);
    assert!(
        refused.iter().all(|c| *c == "SOLD_OUT" || *c == "INSUFFICIENT_STOCK"),
        "{:?}",
        refused.iter().find(|c| **c != "SOLD_OUT")
    );
    let counters = assert_status(shop.get(&format!("/api/sales/{sale}"), None).await, StatusCode::OK).await;
    assert_eq!((counters["remaining"].as_i64(), counters["reserved"].as_i64()), (Some(0), Some(100)), "{counters}");
}

async fn retrying_buyers_never_hold_more_than_the_limit(shop: TestShop) {
    let shop = Arc::new(shop);
    let merchant = shop.merchant().await;
    let (_, sale) = shop.drop_of(&merchant, 60, 2, 0).await;
    // 50 buyers, each with three intended purchases, each sent twice (a retry).
    let attempts = (1..=50)
        .flat_map(|buyer| {
            (0..3).flat_map(move |n| [(buyer, format!("{buyer}-{n}"), 1), (buyer, format!("{buyer}-{n}"), 1)])
        })
        .collect();
    let answers = rush(&shop, sale, attempts).await;
    let mut orders_of: HashMap<i64, Vec<String>> = HashMap::new();
    for (buyer, status, body) in &answers {
        if *status == StatusCode::ACCEPTED {
            orders_of.entry(*buyer).or_default().push(body["order_id"].as_str().unwrap().to_owned());
        } else {
            assert!(
                ["PURCHASE_LIMIT", "SOLD_OUT", "INSUFFICIENT_STOCK"].contains(&body["code"].as_str().unwrap_or("")),
                "{body}"
            );
        }
    }
    let mut units = 0;
    for (buyer, mut ids) in orders_of {
        ids.sort();
        ids.dedup();
        assert!(ids.len() <= 2, "buyer {buyer} holds {} orders", ids.len());
        units += ids.len() as i64;
    }
    let counters = assert_status(shop.get(&format!("/api/sales/{sale}"), None).await, StatusCode::OK).await;
    assert_eq!(counters["reserved"].as_i64(), Some(units), "{counters}");
    assert_eq!(units, 60, "50 buyers × 2 want 100 > 60 units: all sold");
}

async fn every_order_settles_and_stock_is_conserved(shop: TestShop) {
    let shop = Arc::new(shop);
    let merchant = shop.merchant().await;
    let (product, sale) = shop.drop_of(&merchant, 40, 2, 0).await;
    let attempts = (1..=60).map(|buyer| (buyer, format!("k{buyer}"), 1 + buyer % 2)).collect();
    let accepted: Vec<(i64, String)> = rush(&shop, sale, attempts)
        .await
        .into_iter()
        .filter(|(_, s, _)| *s == StatusCode::ACCEPTED)
        .map(|(buyer, _, body)| (buyer, body["order_id"].as_str().unwrap().to_owned()))
        .collect();
    assert!(!accepted.is_empty());
    // Three in four pay (a fifth of those are declined); the rest never pay and expire.
    let mut payers = JoinSet::new();
    for (buyer, order_id) in accepted.iter().cloned() {
        let shop = shop.clone();
        payers.spawn(async move {
            if buyer % 4 != 0 {
                let response = shop.pay_when_due(&shop.minted_shopper(buyer), &order_id).await;
                let status = response.status();
                // Paid, declined, or (on a slow machine) expired before the shopper paid.
                let fine = [StatusCode::OK, StatusCode::PAYMENT_REQUIRED, StatusCode::CONFLICT].contains(&status);
                assert!(fine, "{status}: {}", response.text().await.unwrap());
            }
        });
    }
    payers.join_all().await;
    let mut sold_by_orders = 0;
    let mut outcomes: HashMap<String, usize> = HashMap::new();
    for (buyer, order_id) in &accepted {
        let token = shop.minted_shopper(*buyer);
        let order =
            shop.eventually(&format!("/api/orders/{order_id}"), Some(&token), |o| o["status"] != "PROCESSING").await;
        let status = order["status"].as_str().unwrap().to_owned();
        assert!(["COMPLETE", "FAILED", "CANCELED"].contains(&status.as_str()), "{order}");
        if status == "COMPLETE" {
            sold_by_orders += order["lines"][0]["quantity"].as_i64().unwrap();
        }
        *outcomes.entry(status).or_default() += 1;
    }
    assert!(outcomes.get("CANCELED").is_some_and(|n| *n > 0), "some never paid: {outcomes:?}");
    let counters = shop.settled_sale(sale).await;
    assert_eq!(
        counters["sold"].as_i64(),
        Some(sold_by_orders),
        "the engine and the orders agree: {counters} {outcomes:?}"
    );
    shop.eventually(&format!("/api/products/{product}"), None, |p| p["quantity"] == 1000 - sold_by_orders).await;
}

crate::in_both_modes!(settings = crate::crowd::NO_EXPIRY;
    a_thousand_buyers_for_a_hundred_units,
    retrying_buyers_never_hold_more_than_the_limit,
);

mod settling {
    use super::every_order_settles_and_stock_is_conserved;
    crate::in_both_modes!(settings = crate::crowd::REAL_WORLD_PSP; every_order_settles_and_stock_is_conserved);
}
