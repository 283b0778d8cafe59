//! Each replica remembers which sales it has seen sold out and answers `SOLD_OUT`
//! for them without a Redis round trip. Stock can come back (a failed or expired
//! payment releases it), so a background task re-reads flagged sales and clears the
//! flag when units are available again.
//!
//! A request whose (shopper, key) bought before the sell-out must still get its first
//! answer, which lives in Redis. To spare everyone else that look-up, the refresher
//! also keeps the set of the sale's buyers (up to [`BUYERS_KEPT`]): a shopper not in it
//! cannot have a first answer. The set is re-read whenever the number of buyers
//! changes, so a shopper who bought on another replica after the snapshot (only
//! possible if units came back) is in it by the next refresh.

use std::{
    collections::{hash_map::Entry, HashMap, HashSet},
    sync::{Arc, RwLock},
    time::Duration,
};

use tokio::{sync::Notify, task::JoinHandle};
use tokio_util::sync::CancellationToken;

use crate::{SaleId, StockEngine, UserId};

/// Buyers of a sold-out sale kept per replica; past this, every refusal asks Redis.
pub const BUYERS_KEPT: usize = 200_000;

/// Cheap to clone; clones share the flags. Reads take a shared lock only (the hot path
/// is `is_sold_out` on every purchase; writes happen once per sell-out or refill).
#[derive(Clone, Default)]
pub struct SoldOutFlags {
    flags: Arc<RwLock<HashMap<i64, Buyers>>>,
    /// Wakes the refresher when a sale is newly flagged: until its buyers are read every
    /// refusal still asks the engine, and at a drop's sell-out those are thousands a
    /// second, so they are read at once rather than at the next tick.
    newly_flagged: Arc<Notify>,
}

/// A sold-out sale's buyers (who may still be answered from their own orders), or `None`
/// when there were too many to keep.
type Buyers = Option<Arc<HashSet<i64>>>;

impl SoldOutFlags {
    pub fn is_sold_out(&self, sale_id: i64) -> bool {
        self.flags.read().unwrap_or_else(|p| p.into_inner()).contains_key(&sale_id)
    }

    /// The sale is flagged sold out and `user` is known never to have reserved in it,
    /// so the answer is `SOLD_OUT` without asking anyone.
    pub fn refuses_outright(&self, sale: SaleId, user: UserId) -> bool {
        match self.flags.read().unwrap_or_else(|p| p.into_inner()).get(&sale.0) {
            Some(Some(buyers)) => !buyers.contains(&user.0),
            _ => false,
        }
    }

    pub fn mark(&self, sale_id: i64) {
        let mut flags = self.flags.write().unwrap_or_else(|p| p.into_inner());
        if let Entry::Vacant(entry) = flags.entry(sale_id) {
            entry.insert(None);
            self.newly_flagged.notify_one();
        }
    }

    fn flagged(&self) -> Vec<(i64, Option<usize>)> {
        let flags = self.flags.read().unwrap_or_else(|p| p.into_inner());
        flags.iter().map(|(id, buyers)| (*id, buyers.as_ref().map(|b| b.len()))).collect()
    }

    fn clear(&self, sale_id: i64) {
        self.flags.write().unwrap_or_else(|p| p.into_inner()).remove(&sale_id);
    }

    fn keep_buyers(&self, sale_id: i64, buyers: Option<HashSet<i64>>) {
        if let Some(entry) = self.flags.write().unwrap_or_else(|p| p.into_inner()).get_mut(&sale_id) {
            *entry = buyers.map(Arc::new);
        }
    }

    /// Re-reads every flagged sale once; clears the flag when units are back, the sale
    /// has closed, or the engine no longer knows it (let the engine answer);
    /// re-reads the buyers when their number changed.
    pub async fn refresh(&self, engine: &StockEngine) {
        for (sale_id, known_buyers) in self.flagged() {
            match engine.counters(sale_id).await {
                // A closed sale answers SALE_CLOSED from the engine, not SOLD_OUT.
                Ok(Some(c)) if c.remaining == 0 && !c.closed => {}
                Ok(_) => {
                    self.clear(sale_id);
                    continue;
                }
                Err(e) => {
                    tracing::warn!(sale_id, error = %e, "cannot refresh the sold-out flag");
                    continue;
                }
            }
            match engine.buyer_count(sale_id).await {
                Ok(count) if Some(count) == known_buyers => {}
                Ok(_) => match engine.buyers(sale_id, BUYERS_KEPT).await {
                    Ok(buyers) => self.keep_buyers(sale_id, buyers),
                    Err(e) => tracing::warn!(sale_id, error = %e, "cannot read the buyers of a sold-out sale"),
                },
                Err(e) => tracing::warn!(sale_id, error = %e, "cannot count the buyers of a sold-out sale"),
            }
        }
    }

    /// Keeps the flags in sync with the engine, checking every `every` until `shutdown`.
    pub fn spawn_refresher(&self, engine: StockEngine, every: Duration, shutdown: CancellationToken) -> JoinHandle<()> {
        let flags = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tick.tick() => {}
                    _ = flags.newly_flagged.notified() => {}
                }
                flags.refresh(&engine).await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Quantity, Reservation, ReservationRequest, SaleDefinition, Settle};

    /// Shopper `user` reserves one unit of sale 9 for `order`.
    async fn reserve_one(engine: &StockEngine, user: i64, order: &str) -> Reservation {
        let request = ReservationRequest {
            sale: SaleId(9),
            user: UserId(user),
            key: "k",
            quantity: Quantity::new(1).unwrap(),
            order,
            at_ms: 10,
            turn_ends_ms: None,
        };
        engine.reserve(&request).await.unwrap()
    }

    /// An engine holding sale 9, its one unit reserved by shopper 1 (order `o1`).
    async fn sold_out_to_shopper_1() -> StockEngine {
        let engine = StockEngine::memory();
        engine.load_sale(&drop_of(1)).await.unwrap();
        reserve_one(&engine, 1, "o1").await;
        engine
    }

    fn drop_of(stock: i64) -> SaleDefinition {
        SaleDefinition {
            sale_id: 9,
            product_id: 1,
            stock,
            price_cents: 100,
            opens_at_ms: 0,
            closes_at_ms: i64::MAX,
            per_user_limit: 5,
            queue: None,
        }
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
        assert!(matches!(reserve_one(&engine, 1, "o1").await, Reservation::Reserved { remaining: 0, .. }));
        let flags = SoldOutFlags::default();
        flags.mark(9);
        flags.refresh(&engine).await;
        assert!(flags.is_sold_out(9), "still sold out");
        assert_eq!(engine.release(9, "o1").await.unwrap(), Settle::Released);
        flags.refresh(&engine).await;
        assert!(!flags.is_sold_out(9), "a released unit is for sale again");
    }

    #[tokio::test]
    async fn only_shoppers_who_never_reserved_are_refused_outright_and_a_new_buyer_joins_them() {
        let engine = StockEngine::memory();
        engine.load_sale(&drop_of(2)).await.unwrap();
        reserve_one(&engine, 1, "o1").await;
        reserve_one(&engine, 2, "o2").await;
        let flags = SoldOutFlags::default();
        flags.mark(9);
        assert!(!flags.refuses_outright(SaleId(9), UserId(3)), "no buyer list yet: ask the engine");
        flags.refresh(&engine).await;
        assert!(flags.refuses_outright(SaleId(9), UserId(3)), "shopper 3 never reserved");
        assert!(
            !flags.refuses_outright(SaleId(9), UserId(1)) && !flags.refuses_outright(SaleId(9), UserId(2)),
            "buyers may have a first answer"
        );
        // A unit comes back and shopper 3 buys it elsewhere before this replica looks.
        engine.release(9, "o1").await.unwrap();
        reserve_one(&engine, 3, "o3").await;
        flags.refresh(&engine).await;
        assert!(flags.is_sold_out(9), "sold out again");
        assert!(!flags.refuses_outright(SaleId(9), UserId(3)), "the new buyer is known at the next refresh");
        assert!(!flags.refuses_outright(SaleId(9), UserId(1)), "a released buyer keeps its first answer");
        assert!(!flags.refuses_outright(SaleId(10), UserId(3)), "another sale is not flagged");
    }

    #[tokio::test]
    async fn refresh_clears_the_flag_of_a_closed_sale() {
        let engine = sold_out_to_shopper_1().await;
        let flags = SoldOutFlags::default();
        flags.mark(9);
        engine.close_sale(9).await.unwrap();
        flags.refresh(&engine).await;
        assert!(!flags.is_sold_out(9), "the engine answers SALE_CLOSED");
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
        let engine = sold_out_to_shopper_1().await;
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

    /// The refresher reads a newly flagged sale's buyers at once, not at its next tick:
    /// until then every refusal of the sell-out still asks the engine.
    #[tokio::test]
    async fn a_newly_flagged_sale_has_its_buyers_read_at_once() {
        let engine = sold_out_to_shopper_1().await;
        let flags = SoldOutFlags::default();
        let shutdown = CancellationToken::new();
        let _task = flags.spawn_refresher(engine, Duration::from_secs(3600), shutdown.clone());
        flags.mark(9);
        let known = tokio::time::timeout(Duration::from_secs(5), async {
            while !flags.refuses_outright(SaleId(9), UserId(3)) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        known.await.expect("the buyers are read well before the hourly tick");
        assert!(!flags.refuses_outright(SaleId(9), UserId(1)), "the buyer keeps its first answer");
        shutdown.cancel();
    }
}
