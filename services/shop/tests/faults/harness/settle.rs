//! Waiting for the saga to settle, and what must hold then.

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

use sqlx::Row;

use super::{Seen, Stack, PATIENCE};

/// The sale once the saga has settled: no order of it PROCESSING, nothing reserved.
pub struct Settled {
    /// order id → (status, quantity)
    pub orders: HashMap<String, (String, i64)>,
    pub counters: HashMap<String, i64>,
}

pub async fn settle(stack: &Stack, sale_id: i64) -> Settled {
    sqlx::any::install_default_drivers();
    let db = sqlx::AnyPool::connect(&stack.order_db).await.unwrap();
    let mut conn = redis::Client::open(stack.redis.as_str()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let started = Instant::now();
    loop {
        let rows = sqlx::query(
            "SELECT o.id, o.status, l.quantity FROM orders o JOIN order_lines l ON l.order_id = \
            o.id WHERE o.sale_id = ?",
        )
        .bind(sale_id)
        .fetch_all(&db)
        .await
        .unwrap();
        let orders: HashMap<String, (String, i64)> = rows
            .iter()
            .map(|r| (r.get::<String, _>("id"), (r.get::<String, _>("status"), r.get::<i64, _>("quantity"))))
            .collect();
        let counters: HashMap<String, i64> =
            redis::AsyncCommands::hgetall(&mut conn, goodsmall_sale::keys::sale(sale_id)).await.unwrap();
        if orders.values().all(|(s, _)| s != "PROCESSING") && counters.get("reserved") == Some(&0) {
            db.close().await;
            return Settled { orders, counters };
        }
        let processing = orders.values().filter(|(s, _)| s == "PROCESSING").count();
        assert!(
            started.elapsed() < PATIENCE,
            "not settled in {PATIENCE:?}: {counters:?}, {processing} orders PROCESSING"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// What must hold after any fault, once settled: every order a shopper was told about
/// exists, one per shopper, all terminal; `stock = remaining + reserved + sold` in Redis;
/// Redis and MySQL agree on what was sold; nothing oversold.
pub fn assert_nothing_lost_nothing_oversold(stock: i64, seen: &Seen, settled: &Settled) {
    let missing: Vec<&String> = seen.told.values().filter(|id| !settled.orders.contains_key(*id)).collect();
    assert!(missing.is_empty(), "orders answered 202 but lost: {missing:?}");
    let distinct: HashSet<&String> = seen.told.values().collect();
    assert_eq!(distinct.len(), seen.told.len(), "one order per buyer (retries reused theirs)");
    let terminal = ["COMPLETE", "FAILED", "CANCELED"];
    let stuck: Vec<_> = settled.orders.iter().filter(|(_, (s, _))| !terminal.contains(&s.as_str())).collect();
    assert!(stuck.is_empty(), "orders not terminal: {stuck:?}");
    let c = &settled.counters;
    assert_eq!(c["remaining"] + c["reserved"] + c["sold"], stock, "conservation in Redis: {c:?}");
    let sold_by_orders: i64 = settled.orders.values().filter(|(s, _)| s == "COMPLETE").map(|(_, q)| q).sum();
    assert_eq!(c["sold"], sold_by_orders, "Redis and MySQL agree on what was sold: {c:?}");
    assert!(sold_by_orders <= stock, "oversold: {sold_by_orders} of {stock}");
}
