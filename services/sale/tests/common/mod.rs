//! Both backends, fresh: the in-process engine and Redis on an empty test database.

#![allow(dead_code)] // each test binary uses part of this

use goodsmall_sale::{SaleDefinition, StockEngine};

pub const OPENS: i64 = 1_000_000;
pub const CLOSES: i64 = 2_000_000;

pub async fn redis_connection() -> redis::aio::ConnectionManager {
    let client = redis::Client::open(goodsmall_testkit::redis_url().await).expect("a Redis URL");
    redis::aio::ConnectionManager::new(client).await.expect("the test Redis answers")
}

pub async fn engines() -> [StockEngine; 2] {
    [StockEngine::memory(), StockEngine::redis(redis_connection().await)]
}

pub fn sale(sale_id: i64, stock: i64, per_user_limit: i64) -> SaleDefinition {
    SaleDefinition {
        sale_id,
        product_id: 7,
        stock,
        price_cents: 12_000,
        opens_at_ms: OPENS,
        closes_at_ms: CLOSES,
        per_user_limit,
        queue: None,
    }
}

/// `initial = remaining + reserved + sold`, nothing negative.
pub async fn assert_conserved(engine: &StockEngine, sale_id: i64) -> goodsmall_sale::SaleCounters {
    let c = engine
        .counters(sale_id)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{}: sale {sale_id} vanished", engine.backend_name()));
    assert_eq!(c.initial, c.remaining + c.reserved + c.sold, "{}: conservation broken: {c:?}", engine.backend_name());
    assert!(c.remaining >= 0 && c.reserved >= 0 && c.sold >= 0, "{}: negative counter: {c:?}", engine.backend_name());
    c
}
