//! Each replica remembers which sales it has seen sold out and answers `SOLD_OUT`
//! for them without a Redis round trip. Stock can come back (a failed or expired
//! payment releases it), so a background task re-reads flagged sales and clears the
//! flag when units are available again.

use std::{
    collections::HashSet,
    sync::{Arc, RwLock},
    time::Duration,
};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::StockEngine;

/// Cheap to clone; clones share the flags. Reads take a shared lock only (the hot path
/// is `is_sold_out` on every purchase; writes happen once per sell-out or refill).
#[derive(Clone, Default)]
pub struct SoldOutFlags(Arc<RwLock<HashSet<i64>>>);

impl SoldOutFlags {
    pub fn is_sold_out(&self, sale_id: i64) -> bool {
        self.0.read().unwrap_or_else(|p| p.into_inner()).contains(&sale_id)
    }

    pub fn mark(&self, sale_id: i64) {
        self.0.write().unwrap_or_else(|p| p.into_inner()).insert(sale_id);
    }

    fn flagged(&self) -> Vec<i64> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).iter().copied().collect()
    }

    fn clear(&self, sale_id: i64) {
        self.0.write().unwrap_or_else(|p| p.into_inner()).remove(&sale_id);
    }

    /// Re-reads every flagged sale once; clears the flag when units are back or the
    /// engine no longer knows the sale (let the engine answer, e.g. after a restore).
    pub async fn refresh(&self, engine: &StockEngine) {
        for sale_id in self.flagged() {
            match engine.counters(sale_id).await {
                Ok(Some(c)) if c.remaining == 0 => {}
                Ok(_) => self.clear(sale_id),
                Err(e) => tracing::warn!(sale_id, error = %e, "cannot refresh the sold-out flag"),
            }
        }
    }

    /// Keeps the flags in sync with the engine, checking every `every` until `shutdown`.
    pub fn spawn_refresher(&self, engine: StockEngine, every: Duration, shutdown: CancellationToken) -> JoinHandle<()> {
        let flags = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tick.tick() => flags.refresh(&engine).await,
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Reservation, SaleDefinition, Settle};

    fn drop_of(stock: i64) -> SaleDefinition {
        SaleDefinition { sale_id: 9, product_id: 1, stock, price_cents: 100, opens_at_ms: 0, closes_at_ms: i64::MAX, per_user_limit: 5 }
    }

    #[test]
    fn flags_are_per_sale_and_shared_by_clones() {
        let flags = SoldOutFlags::default();
        let other = flags.clone();
        assert!(!flags.is_sold_out(1));
        other.mark(1);
        assert!(flags.is_sold_out(1));
        assert!(!flags.is_sold_out(2));
    }

    #[tokio::test]
    async fn refresh_keeps_the_flag_while_sold_out_and_clears_it_after_a_release() {
        let engine = StockEngine::memory();
        engine.load_sale(&drop_of(1)).await.unwrap();
        assert!(matches!(engine.reserve(9, 1, "k", 1, "o1", 10).await.unwrap(), Reservation::Reserved { remaining: 0, .. }));
        let flags = SoldOutFlags::default();
        flags.mark(9);
        flags.refresh(&engine).await;
        assert!(flags.is_sold_out(9), "still sold out");
        assert_eq!(engine.release(9, "o1").await.unwrap(), Settle::Released);
        flags.refresh(&engine).await;
        assert!(!flags.is_sold_out(9), "a released unit is for sale again");
    }

    #[tokio::test]
    async fn refresh_clears_a_sale_the_engine_does_not_know() {
        let flags = SoldOutFlags::default();
        flags.mark(404);
        flags.refresh(&StockEngine::memory()).await;
        assert!(!flags.is_sold_out(404));
    }

    #[tokio::test]
    async fn the_refresher_clears_the_flag_and_stops_on_shutdown() {
        let engine = StockEngine::memory();
        engine.load_sale(&drop_of(1)).await.unwrap();
        engine.reserve(9, 1, "k", 1, "o1", 10).await.unwrap();
        let flags = SoldOutFlags::default();
        flags.mark(9);
        let shutdown = CancellationToken::new();
        let task = flags.spawn_refresher(engine.clone(), Duration::from_millis(10), shutdown.clone());
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(flags.is_sold_out(9), "nothing came back yet");
        engine.release(9, "o1").await.unwrap();
        // Wait for the refresher (bounded), not a fixed sleep: the machine may be busy.
        let cleared = tokio::time::timeout(Duration::from_secs(5), async {
            while flags.is_sold_out(9) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        cleared.await.expect("the refresher clears the flag");
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), task).await.expect("stops on shutdown").unwrap();
    }
}
