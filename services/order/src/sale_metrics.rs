//! The drop's gauges: every active sale's stock counters, read from the stock engine
//! once a second (`goodsmall_sale_remaining` and the rest, label `sale_id`). A sale
//! leaves the gauges when it closes or ends, so the label set stays as small as the
//! number of sales running at once. Also the time from an order's creation to its
//! terminal state.

use std::{collections::HashSet, time::Duration};

use goodsmall_platform::{error::chain, metrics::Metrics};
use goodsmall_sale::{EngineError, StockEngine};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::sales::{Sales, SalesError};

/// Why the gauges could not be refreshed (they are again a second later).
#[derive(Debug, thiserror::Error)]
pub enum GaugeError {
    #[error("sale gauges: reading the sales failed")]
    Sales(#[from] SalesError),
    #[error("sale gauges: the stock engine failed")]
    Engine(#[from] EngineError),
}

pub fn run(
    sales: Sales,
    engine: StockEngine,
    metrics: Metrics,
    every: Duration,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut shown = HashSet::new();
        loop {
            match refresh(&sales, &engine, &metrics, &shown).await {
                Ok(now_shown) => shown = now_shown,
                Err(e) => tracing::debug!(error = %chain(&e), "refreshing the sale gauges failed"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
        }
    })
}

/// One pass: sets the gauges of the sales that are active (recorded, not ended, held by
/// the engine and not closed there) and removes the others shown before.
pub async fn refresh(
    sales: &Sales,
    engine: &StockEngine,
    metrics: &Metrics,
    shown: &HashSet<i64>,
) -> Result<HashSet<i64>, GaugeError> {
    let mut active = HashSet::new();
    for sale in sales.recent(Duration::ZERO).await? {
        if sale.closed_at.is_some() {
            continue;
        }
        if let Some(c) = engine.counters(sale.id).await? {
            if !c.closed && goodsmall_platform::clock::now_millis() < c.closes_at_ms {
                metrics.drops().set_sale(sale.id, c.initial, c.remaining, c.reserved, c.sold, c.per_user_limit);
                active.insert(sale.id);
            }
        }
    }
    for gone in shown.difference(&active) {
        metrics.drops().remove_sale(*gone);
    }
    Ok(active)
}

/// A sale order reached `status`: observed against the creation time its UUIDv7 id
/// carries (orders of a cart checkout the same way).
pub fn order_settled(metrics: &Metrics, order_id: &str, status: &str) {
    let Some(created_ms) = goodsmall_platform::clock::uuid_v7_millis(order_id) else { return };
    let elapsed = (goodsmall_platform::clock::now_millis() - created_ms) as f64 / 1000.0;
    metrics.drops().order_settled(status, elapsed);
}
