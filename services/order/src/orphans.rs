//! Reservations whose order never got committed. A purchase reserves in the stock
//! engine first and commits its order second; a crash (or a failed commit) in between
//! leaves units held by no order. This sweeper finds reservations older than a grace
//! period with no order row and records them as a cancelled order (`order.created`
//! then `order.canceled` in one transaction), so the ordinary saga releases the units
//! and cancels the payment. The insert is keyed by the order id: if the purchase does
//! commit after all, exactly one of the two wins. Each tick also restores sales an
//! emptied engine has lost (see `Sales::restore_lost_sales`).

use std::{
    collections::{HashMap, HashSet},
    time::Duration,
};

use goodsmall_platform::{
    clock::{now_millis, uuid_v7_millis},
    error::chain,
    events::contracts::OrderLine,
};
use goodsmall_sale::{EngineError, StockEngine};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{
    orders::{NewOrder, OrderRecordError, Orders},
    sales::{Sales, SalesError},
};

/// Why a sweep stopped (the next tick starts over).
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error("orphan sweep: reading the sales failed")]
    Sales(#[from] SalesError),
    #[error("orphan sweep: the stock engine failed")]
    Engine(#[from] EngineError),
    #[error("orphan sweep: looking up the orders failed")]
    Lookup(#[from] sqlx::Error),
    #[error("orphan sweep: recording an orphan failed")]
    Record(#[from] OrderRecordError),
}

pub fn run(
    orders: Orders,
    sales: Sales,
    engine: StockEngine,
    grace: Duration,
    tick: Duration,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    let every = sweep_interval(tick, grace);
    tokio::spawn(async move {
        let mut sweeper = Sweeper::default();
        let mut last_sweep = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(tick) => {}
            }
            if let Err(e) = sales.restore_lost_sales().await {
                tracing::warn!(error = %chain(&e), "restoring lost sales failed");
            }
            if last_sweep.elapsed() < every {
                continue;
            }
            last_sweep = tokio::time::Instant::now();
            match sweeper.sweep(&orders, &sales, &engine, grace).await {
                Ok(Pass { released: 0, .. }) => {}
                Ok(Pass { released, .. }) => {
                    orders.database().metrics().drops().orphans_released(released);
                    tracing::warn!(reservations = released, "released reservations whose order was never committed")
                }
                Err(e) => tracing::warn!(error = %chain(&e), "orphan sweep failed"),
            }
        }
    })
}

/// How often the reservations are swept: every tick, but no more often than half the
/// grace. A pass reads every open reservation of every recent sale (a big drop holds a
/// hundred thousand while its payments are due, and every replica sweeps), while an
/// orphan is only released once older than the grace anyway: sweeping every half grace
/// releases it at most half a grace later, for a fraction of the work.
pub fn sweep_interval(tick: Duration, grace: Duration) -> Duration {
    tick.max(grace / 2)
}

/// What one pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pass {
    /// Orphaned reservations turned into cancelled orders.
    pub released: usize,
    /// Reservations whose order the pass looked up in the database.
    pub looked_up: usize,
}

/// The sweep, remembering across passes which open reservations have an order: an
/// order row never goes away, so a pass asks the database only about reservations it
/// has not yet seen with one (a big drop holds a hundred thousand open reservations
/// while its payments are due, and most of them are committed).
#[derive(Default)]
pub struct Sweeper {
    /// Per sale: open reservations known to have an order row.
    recorded: HashMap<i64, HashSet<String>>,
}

impl Sweeper {
    pub async fn sweep(
        &mut self,
        orders: &Orders,
        sales: &Sales,
        engine: &StockEngine,
        grace: Duration,
    ) -> Result<Pass, SweepError> {
        let cutoff_ms = now_millis() - grace.as_millis() as i64;
        let mut pass = Pass::default();
        // What is still open replaces what was remembered (a failed pass forgets the
        // sales it reached, which only costs the next pass a few more lookups).
        let mut still_recorded = HashMap::new();
        for sale in sales.recent(Duration::from_secs(24 * 3600)).await? {
            let open = engine.open_reservations(sale.id).await?;
            let known = self.recorded.remove(&sale.id).unwrap_or_default();
            let mut recorded: HashSet<String> =
                open.iter().filter(|r| known.contains(&r.order_id)).map(|r| r.order_id.clone()).collect();
            let old: Vec<_> = open
                .into_iter()
                .filter(|r| {
                    !recorded.contains(&r.order_id) && uuid_v7_millis(&r.order_id).is_some_and(|at| at <= cutoff_ms)
                })
                .collect();
            // One query per few hundred reservations, not one per reservation.
            let ids: Vec<&str> = old.iter().map(|r| r.order_id.as_str()).collect();
            let committed = orders.existing(&ids).await?;
            pass.looked_up += ids.len();
            for reservation in old {
                if !committed.contains(&reservation.order_id) {
                    let line = OrderLine {
                        product_id: sale.product_id,
                        quantity: reservation.quantity,
                        unit_price_cents: sale.price.cents(),
                    };
                    let order = NewOrder {
                        id: reservation.order_id.clone(),
                        user_id: reservation.user_id,
                        sale_id: Some(sale.id),
                        lines: vec![line],
                        idempotency_key: None,
                    };
                    // Not inserted: the purchase committed after all. Either way it has a row now.
                    if orders.insert_canceled(&order).await? {
                        pass.released += 1;
                    }
                }
                recorded.insert(reservation.order_id);
            }
            still_recorded.insert(sale.id, recorded);
        }
        self.recorded = still_recorded;
        Ok(pass)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pass_comes_every_tick_but_at_most_every_half_grace() {
        let secs = Duration::from_secs;
        assert_eq!(sweep_interval(secs(5), secs(60)), secs(30));
        assert_eq!(sweep_interval(secs(5), secs(4)), secs(5));
        assert_eq!(sweep_interval(Duration::from_millis(200), secs(1)), Duration::from_millis(500));
    }
}
