//! The stock engine's contract, run against both backends: the in-process engine must
//! decide exactly as the Redis Lua scripts do. Conservation
//! (`initial = remaining + reserved + sold`) is checked after every step.

use goodsmall_sale::{LoadOutcome, Refusal, Reservation, SaleDefinition, Settle, StockEngine};

async fn engines() -> Vec<StockEngine> {
    let url = goodsmall_testkit::redis_url().await;
    let client = redis::Client::open(url).unwrap();
    let conn = redis::aio::ConnectionManager::new(client).await.expect("the test Redis answers");
    vec![StockEngine::memory(), StockEngine::redis(conn)]
}

const OPENS: i64 = 1_000_000;
const CLOSES: i64 = 2_000_000;

fn sale(id: i64, stock: i64, limit: i64) -> SaleDefinition {
    SaleDefinition { sale_id: id, product_id: 7, stock, price_cents: 12000, opens_at_ms: OPENS, closes_at_ms: CLOSES, per_user_limit: limit }
}

async fn conserved(engine: &StockEngine, sale_id: i64) {
    let c = engine.counters(sale_id).await.unwrap().unwrap();
    assert_eq!(c.initial, c.remaining + c.reserved + c.sold, "{}: {c:?}", engine.backend_name());
    assert!(c.remaining >= 0 && c.reserved >= 0 && c.sold >= 0, "{c:?}");
}

fn refused(r: Reservation) -> Refusal {
    match r {
        Reservation::Refused(r) => r,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn decisions_follow_the_rules_in_order() {
    for e in engines().await {
        let name = e.backend_name();
        assert_eq!(refused(e.reserve(1, 10, "k", 1, "o0", OPENS).await.unwrap()), Refusal::UnknownSale, "{name}");
        assert_eq!(e.load_sale(&sale(1, 3, 2)).await.unwrap(), LoadOutcome::Created);
        assert_eq!(e.load_sale(&sale(1, 3, 2)).await.unwrap(), LoadOutcome::Unchanged, "{name}: loading is idempotent");
        assert_eq!(refused(e.reserve(1, 10, "k", 1, "o1", OPENS - 1).await.unwrap()), Refusal::SaleNotOpen, "{name}");
        assert_eq!(refused(e.reserve(1, 10, "k", 1, "o1", CLOSES).await.unwrap()), Refusal::SaleClosed, "{name}");
        assert_eq!(refused(e.reserve(1, 10, "k", 3, "o1", OPENS).await.unwrap()), Refusal::PurchaseLimit, "{name}");
        let first = e.reserve(1, 10, "k", 2, "o1", OPENS).await.unwrap();
        assert_eq!(first, Reservation::Reserved { order_id: "o1".into(), quantity: 2, remaining: 1, repeated: false }, "{name}");
        let again = e.reserve(1, 10, "k", 2, "o-other", OPENS + 5).await.unwrap();
        assert_eq!(again, Reservation::Reserved { order_id: "o1".into(), quantity: 2, remaining: 1, repeated: true }, "{name}: same key, first answer");
        assert_eq!(refused(e.reserve(1, 10, "k2", 1, "o2", OPENS).await.unwrap()), Refusal::PurchaseLimit, "{name}");
        assert_eq!(refused(e.reserve(1, 11, "k", 2, "o3", OPENS).await.unwrap()), Refusal::InsufficientStock, "{name}");
        assert!(matches!(e.reserve(1, 11, "k", 1, "o3", OPENS).await.unwrap(), Reservation::Reserved { remaining: 0, .. }), "{name}");
        assert_eq!(refused(e.reserve(1, 12, "k", 1, "o4", OPENS).await.unwrap()), Refusal::SoldOut, "{name}");
        conserved(&e, 1).await;

        // Settling: confirm once, release once; a release frees the buyer's limit.
        assert_eq!(e.confirm(1, "o3").await.unwrap(), Settle::Done);
        assert_eq!(e.confirm(1, "o3").await.unwrap(), Settle::AlreadySettled, "{name}");
        assert_eq!(e.release(1, "o1").await.unwrap(), Settle::Done);
        assert_eq!(e.release(1, "o1").await.unwrap(), Settle::AlreadySettled, "{name}");
        assert_eq!(e.confirm(1, "o1").await.unwrap(), Settle::AlreadySettled, "{name}: released cannot be sold");
        assert_eq!(e.release(1, "nope").await.unwrap(), Settle::Unknown);
        let c = e.counters(1).await.unwrap().unwrap();
        assert_eq!((c.remaining, c.reserved, c.sold), (2, 0, 1), "{name}");
        assert!(matches!(e.reserve(1, 10, "k3", 2, "o5", OPENS).await.unwrap(), Reservation::Reserved { .. }), "{name}: limit freed");
        // A refund: sold units go back too.
        assert_eq!(e.release(1, "o3").await.unwrap(), Settle::Done);
        conserved(&e, 1).await;

        // Stock changes mid-sale: raise, lower, never below what is committed.
        assert_eq!(e.load_sale(&sale(1, 10, 2)).await.unwrap(), LoadOutcome::Updated);
        let c = e.counters(1).await.unwrap().unwrap();
        assert_eq!((c.initial, c.remaining), (10, 8), "{name}");
        assert!(e.load_sale(&sale(1, 1, 2)).await.is_err(), "{name}: 2 units are reserved");
        conserved(&e, 1).await;
        assert!(e.close_sale(1).await.unwrap());
        assert_eq!(refused(e.reserve(1, 30, "k", 1, "o6", OPENS).await.unwrap()), Refusal::SaleClosed, "{name}");
    }
}

#[tokio::test]
async fn cart_checkout_reserves_every_line_or_none() {
    for e in engines().await {
        let name = e.backend_name();
        e.set_product_stock(1, 5).await.unwrap();
        e.set_product_stock(2, 1).await.unwrap();
        assert_eq!(e.reserve_products("c1", &[(1, 2), (2, 2)]).await.unwrap(), Err(2), "{name}");
        assert_eq!(e.reserve_products("c1", &[(1, 2), (3, 1)]).await.unwrap(), Err(3), "{name}: unknown product");
        assert_eq!(e.product_stock(1).await.unwrap(), Some(5), "{name}: nothing taken");
        assert_eq!(e.reserve_products("c2", &[(1, 2), (2, 1)]).await.unwrap(), Ok(()));
        assert_eq!(e.reserve_products("c2", &[(1, 2), (2, 1)]).await.unwrap(), Ok(()), "{name}: idempotent");
        assert_eq!((e.product_stock(1).await.unwrap(), e.product_stock(2).await.unwrap()), (Some(3), Some(0)), "{name}");
        assert!(e.release_products("c2").await.unwrap());
        assert!(!e.release_products("c2").await.unwrap(), "{name}: released once");
        assert_eq!((e.product_stock(1).await.unwrap(), e.product_stock(2).await.unwrap()), (Some(5), Some(1)), "{name}");
    }
}

/// 1,000 buyers at once for 100 units, limit 1: exactly 100 win.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_buyers_never_oversell() {
    for e in engines().await {
        e.load_sale(&sale(5, 100, 1)).await.unwrap();
        let tasks: Vec<_> = (0..1000)
            .map(|user| {
                let e = e.clone();
                tokio::spawn(async move { e.reserve(5, user, "buy", 1, &format!("order-{user}"), OPENS).await.unwrap() })
            })
            .collect();
        let (mut won, mut sold_out) = (0, 0);
        for t in tasks {
            match t.await.unwrap() {
                Reservation::Reserved { .. } => won += 1,
                Reservation::Refused(Refusal::SoldOut | Refusal::InsufficientStock) => sold_out += 1,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!((won, sold_out), (100, 900), "{}", e.backend_name());
        let c = e.counters(5).await.unwrap().unwrap();
        assert_eq!((c.remaining, c.reserved), (0, 100));
    }
}

/// Limit 2, buyers retrying and firing extra attempts: nobody holds more than 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eager_buyers_never_pass_the_limit() {
    for e in engines().await {
        e.load_sale(&sale(6, 150, 2)).await.unwrap();
        let tasks: Vec<_> = (0..200i64)
            .flat_map(|user| (0..5).map(move |attempt| (user, attempt)))
            .map(|(user, attempt)| {
                let e = e.clone();
                // Attempts 3 and 4 retry attempt 0's key.
                let key = format!("k{}", if attempt >= 3 { 0 } else { attempt });
                tokio::spawn(async move { (user, e.reserve(6, user, &key, 1, &format!("o-{user}-{attempt}"), OPENS).await.unwrap()) })
            })
            .collect();
        let mut held = std::collections::HashMap::<i64, std::collections::HashSet<String>>::new();
        for t in tasks {
            if let (user, Reservation::Reserved { order_id, .. }) = t.await.unwrap() {
                held.entry(user).or_default().insert(order_id);
            }
        }
        assert!(held.values().all(|orders| orders.len() <= 2), "{}: someone holds more than 2", e.backend_name());
        assert_eq!(held.values().map(|o| o.len()).sum::<usize>(), 150, "every unit sold once");
        conserved(&e, 6).await;
    }
}
