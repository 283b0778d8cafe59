//! Once a drop is sold out, a replica answers shoppers who never reserved in it from
//! memory: no stock-engine call, no session look-up and no signature check
//! (`docs/decisions.md`). A buyer's retry still gets its first answer, and a logged-out
//! buyer or a forged token naming a buyer is still refused.

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::helpers::{assert_problem, assert_status, TestShop};

/// The key-value reads of the process (the session look-ups of its requests, and
/// whatever its background work reads meanwhile).
const KV_GETS: &str = r#"goodsmall_kv_operations_total{op="get",outcome="ok"}"#;
/// Purchases refused from the replica's memory: the route returns before the session
/// look-up and the stock engine.
const FROM_MEMORY: &str = r#"goodsmall_sold_out_flag_answers_total{answer="refused_from_memory"}"#;

async fn counter(shop: &TestShop, series: &str) -> f64 {
    shop.metric("/api/sales", series).await.unwrap_or_else(|| panic!("/metrics lacks {series}"))
}

async fn kv_gets(shop: &TestShop) -> f64 {
    counter(shop, KV_GETS).await
}

/// The token with its signature changed (its header and claims as they were).
fn forged(token: &str) -> String {
    let (signed, signature) = token.rsplit_once('.').unwrap();
    let first = if signature.starts_with('A') { 'B' } else { 'A' };
    format!("{signed}.{first}{}", &signature[1..])
}

async fn a_sold_out_drop_refuses_from_memory_and_buyers_keep_their_first_answer(shop: TestShop) {
    let merchant = shop.merchant().await;
    let (_, sale) = shop.drop_of(&merchant, 1, 1, 0).await;
    let buyer = shop.shopper().await;
    let first = assert_status(shop.buy(&buyer, sale, "first-try", 1).await, StatusCode::ACCEPTED).await;
    let latecomer = shop.shopper().await;
    let fresh_key = || uuid::Uuid::new_v4().to_string();

    // The replica learns who bought at its next refresh (every 250 ms): from then on a
    // latecomer is refused from memory, before the session look-up and the engine. (The
    // process-wide count of key-value reads is no measure of that: the first order's
    // saga and the other services' background work read too, at any moment.)
    let started = Instant::now();
    loop {
        let before = counter(&shop, FROM_MEMORY).await;
        assert_problem(shop.buy(&latecomer, sale, &fresh_key(), 1).await, StatusCode::CONFLICT, "SOLD_OUT").await;
        if counter(&shop, FROM_MEMORY).await > before {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "every sold-out refusal still looks the session up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before = counter(&shop, FROM_MEMORY).await;
    for _ in 0..20 {
        assert_problem(shop.buy(&latecomer, sale, &fresh_key(), 1).await, StatusCode::CONFLICT, "SOLD_OUT").await;
    }
    assert_eq!(
        counter(&shop, FROM_MEMORY).await - before,
        20.0,
        "every refusal of a shopper who never reserved reads nothing"
    );
    // The refusal comes before the signature is checked: a token whose signature is
    // wrong gets it too when its user never reserved (the same answer as anyone's) ...
    assert_problem(shop.buy(&forged(&latecomer), sale, &fresh_key(), 1).await, StatusCode::CONFLICT, "SOLD_OUT").await;
    // ... but one naming the buyer is checked, and refused: no first answer for it.
    assert_problem(shop.buy(&forged(&buyer), sale, "first-try", 1).await, StatusCode::UNAUTHORIZED, "INVALID_TOKEN")
        .await;
    assert_problem(shop.buy("not-a-jwt", sale, &fresh_key(), 1).await, StatusCode::UNAUTHORIZED, "INVALID_TOKEN").await;
    let (before, refused_before) = (kv_gets(&shop).await, counter(&shop, FROM_MEMORY).await);

    // The buyer's retry is not refused from memory: it gets its order back ...
    let again = assert_status(shop.buy(&buyer, sale, "first-try", 1).await, StatusCode::ACCEPTED).await;
    assert_eq!(again["order_id"], first["order_id"], "the retry's first answer");
    assert_eq!(counter(&shop, FROM_MEMORY).await, refused_before, "a buyer is not answered from memory");
    assert!(kv_gets(&shop).await > before, "a buyer's request looks its session up");
    // ... unless its session was logged out.
    assert_status(shop.post("/api/auth/logout", Some(&buyer), serde_json::json!({})).await, StatusCode::NO_CONTENT)
        .await;
    assert_problem(shop.buy(&buyer, sale, "first-try", 1).await, StatusCode::UNAUTHORIZED, "TOKEN_REVOKED").await;
}

crate::in_both_modes!(a_sold_out_drop_refuses_from_memory_and_buyers_keep_their_first_answer,);
