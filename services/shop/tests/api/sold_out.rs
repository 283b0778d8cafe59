//! Once a drop is sold out, a replica answers shoppers who never reserved in it from
//! memory: no stock-engine call and no session look-up (`docs/decisions.md`). A buyer's
//! retry still gets its first answer, and a logged-out buyer is still refused.

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::helpers::{assert_problem, assert_status, TestShop};

/// The key-value reads of the order side (the session look-ups of its requests).
const KV_GETS: &str = r#"goodsmall_kv_operations_total{op="get",outcome="ok"}"#;

async fn kv_gets(shop: &TestShop) -> f64 {
    shop.metric("/api/sales", KV_GETS).await.unwrap_or_else(|| panic!("/metrics lacks {KV_GETS}"))
}

async fn a_sold_out_drop_refuses_from_memory_and_buyers_keep_their_first_answer(shop: TestShop) {
    let merchant = shop.merchant().await;
    let (_, sale) = shop.drop_of(&merchant, 1, 1, 0).await;
    let buyer = shop.shopper().await;
    let first = assert_status(shop.buy(&buyer, sale, "first-try", 1).await, StatusCode::ACCEPTED).await;
    let latecomer = shop.shopper().await;
    let fresh_key = || uuid::Uuid::new_v4().to_string();

    // The replica learns who bought at its next refresh (every 250 ms): from then on a
    // latecomer's refusal reads nothing.
    let started = Instant::now();
    loop {
        let before = kv_gets(&shop).await;
        assert_problem(shop.buy(&latecomer, sale, &fresh_key(), 1).await, StatusCode::CONFLICT, "SOLD_OUT").await;
        if kv_gets(&shop).await == before {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "every sold-out refusal still looks the session up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before = kv_gets(&shop).await;
    for _ in 0..20 {
        assert_problem(shop.buy(&latecomer, sale, &fresh_key(), 1).await, StatusCode::CONFLICT, "SOLD_OUT").await;
    }
    assert_eq!(kv_gets(&shop).await, before, "refusing a shopper who never reserved reads nothing");

    // The buyer's retry is not refused from memory: it gets its order back ...
    let again = assert_status(shop.buy(&buyer, sale, "first-try", 1).await, StatusCode::ACCEPTED).await;
    assert_eq!(again["order_id"], first["order_id"], "the retry's first answer");
    assert!(kv_gets(&shop).await > before, "a buyer's request looks its session up");
    // ... unless its session was logged out.
    assert_status(shop.post("/api/auth/logout", Some(&buyer), serde_json::json!({})).await, StatusCode::NO_CONTENT)
        .await;
    assert_problem(shop.buy(&buyer, sale, "first-try", 1).await, StatusCode::UNAUTHORIZED, "TOKEN_REVOKED").await;
}

crate::in_both_modes!(a_sold_out_drop_refuses_from_memory_and_buyers_keep_their_first_answer,);
