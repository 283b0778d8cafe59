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

    /// Keeps the flags in sync with the engine, checking every `every`.
    pub fn spawn_refresher(&self, engine: StockEngine, every: Duration, shutdown: CancellationToken) -> JoinHandle<()> {
        let flags = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(every) => {}
                }
                for sale_id in flags.flagged() {
                    match engine.counters(sale_id).await {
                        Ok(Some(c)) if c.remaining > 0 => flags.clear(sale_id),
                        Ok(_) => {}
                        Err(e) => tracing::warn!(sale_id, error = %e, "cannot refresh the sold-out flag"),
                    }
                }
            }
        })
    }
}
