//! Each replica's memory of the waiting rooms it answers, so that most polls cost no
//! round trip to the stock store. After the opening a shopper's number in the queue
//! never changes, and who is admitted is the first `admitted` numbers: a replica that
//! knows a shopper's number and the room's `admitted` (re-read every [`REFRESH`]) can
//! answer a shopper far from the front `WAITING` with the position itself. Anyone who
//! may be admitted within a second or so, and every room that is sold out, closed or
//! not fresh, is asked of the engine, which alone hands out turns.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicI64, Ordering},
        Arc, RwLock,
    },
    time::{Duration, Instant},
};

use goodsmall_platform::clock::now_millis;
use goodsmall_sale::{queue::QueuePlace, SaleId, StockEngine, UserId};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How often a known room is re-read.
pub const REFRESH: Duration = Duration::from_millis(250);
/// A room not re-read for this long is not answered from memory.
const FRESH_FOR: Duration = Duration::from_secs(1);
/// A room nobody polled for this long is forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(120);

#[derive(Clone, Default)]
pub struct QueueSnapshots(Arc<RwLock<HashMap<SaleId, Room>>>);

struct Room {
    /// Shopper → number in the queue, learnt from the engine's answers.
    numbers: HashMap<UserId, u64>,
    admitted: u64,
    units_left: i64,
    admit_per_second: i64,
    /// Open, not sold out, not closed, as last read.
    answerable: bool,
    read_at: Option<Instant>,
    /// When a shopper last asked (Unix ms): bumped under the read lock, so that a poll
    /// answered from memory takes no write lock.
    polled_at_ms: AtomicI64,
}

impl QueueSnapshots {
    /// `WAITING` from memory, when it is certainly still so.
    pub fn waiting(&self, sale: SaleId, user: UserId) -> Option<QueuePlace> {
        let rooms = self.0.read().unwrap_or_else(|p| p.into_inner());
        let room = rooms.get(&sale)?;
        let number = *room.numbers.get(&user)?;
        let fresh = room.read_at.is_some_and(|at| at.elapsed() < FRESH_FOR);
        // Whoever could be admitted before the next refresh or two asks the engine.
        let margin = room.admit_per_second.max(1).unsigned_abs();
        if !(fresh && room.answerable && number > room.admitted + margin) {
            return None;
        }
        room.polled_at_ms.store(now_millis(), Ordering::Relaxed);
        Some(QueuePlace::Waiting {
            position: number - room.admitted,
            units_left: room.units_left,
            admit_per_second: room.admit_per_second,
            number,
        })
    }

    /// Remembers what the engine answered `user` (their number, once placed); a poll
    /// answered from memory has nothing to add.
    pub fn learn(&self, sale: SaleId, user: UserId, place: &QueuePlace) {
        let (number, rate) = match *place {
            QueuePlace::Waiting { number, admit_per_second, .. } => (number, Some(admit_per_second)),
            QueuePlace::Admitted { number, .. } | QueuePlace::Expired { number } => (number, None),
            QueuePlace::PreQueue { .. } | QueuePlace::SoldOut | QueuePlace::Closed => return,
        };
        let mut rooms = self.0.write().unwrap_or_else(|p| p.into_inner());
        let room = rooms.entry(sale).or_insert_with(|| Room {
            numbers: HashMap::new(),
            admitted: 0,
            units_left: 0,
            admit_per_second: 1,
            answerable: false,
            read_at: None,
            polled_at_ms: AtomicI64::new(0),
        });
        room.numbers.insert(user, number);
        room.polled_at_ms.store(now_millis(), Ordering::Relaxed);
        if let Some(rate) = rate {
            room.admit_per_second = rate;
        }
    }

    /// Re-reads every known room once (which also admits whoever is due).
    pub async fn refresh(&self, engine: &StockEngine) {
        let now = now_millis();
        let sales: Vec<SaleId> = {
            let mut rooms = self.0.write().unwrap_or_else(|p| p.into_inner());
            let forget_before = now - FORGET_AFTER.as_millis() as i64;
            rooms.retain(|_, room| room.polled_at_ms.load(Ordering::Relaxed) >= forget_before);
            rooms.keys().copied().collect()
        };
        for sale in sales {
            let read = match (engine.queue_counts(sale, now).await, engine.counters(sale.0).await) {
                (Ok(Ok(counts)), Ok(Some(c))) => {
                    let answerable = !c.closed && now < c.closes_at_ms && (c.remaining > 0 || c.reserved > 0);
                    Some((counts.admitted, c.remaining, answerable))
                }
                // No such room any more, or the engine does not answer: ask it per poll.
                _ => None,
            };
            let mut rooms = self.0.write().unwrap_or_else(|p| p.into_inner());
            let Some(room) = rooms.get_mut(&sale) else { continue };
            match read {
                Some((admitted, units_left, answerable)) => {
                    (room.admitted, room.units_left, room.answerable) = (admitted, units_left, answerable);
                    room.read_at = Some(Instant::now());
                }
                None => room.read_at = None,
            }
        }
    }

    pub fn spawn_refresher(&self, engine: StockEngine, shutdown: CancellationToken) -> JoinHandle<()> {
        let snapshots = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(REFRESH);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tick.tick() => snapshots.refresh(&engine).await,
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use goodsmall_sale::{queue::QueueTerms, SaleDefinition};

    use super::*;

    #[tokio::test]
    async fn only_shoppers_far_from_the_front_of_a_fresh_open_room_are_answered_from_memory() {
        let engine = StockEngine::memory();
        let now = goodsmall_platform::clock::now_millis();
        let terms = QueueTerms { pre_queue_ms: 60_000, admit_per_second: 2, turn_ttl_ms: 60_000 };
        let def = SaleDefinition {
            sale_id: 1,
            product_id: 1,
            stock: 100,
            price_cents: 100,
            opens_at_ms: now + 200,
            closes_at_ms: now + 3_600_000,
            per_user_limit: 1,
            queue: Some(terms),
        };
        engine.load_sale(&def).await.unwrap();
        for user in 1..=10 {
            engine.join_queue(SaleId(1), UserId(user), now).await.unwrap().unwrap();
        }
        let snapshots = QueueSnapshots::default();
        let after_opening = now + 300;
        let mut numbers = HashMap::new();
        for user in 1..=10 {
            let place = engine.queue_place(SaleId(1), UserId(user), after_opening).await.unwrap().unwrap();
            snapshots.learn(SaleId(1), UserId(user), &place);
            if let QueuePlace::Waiting { number, .. } | QueuePlace::Admitted { number, .. } = place {
                numbers.insert(user, number);
            }
        }
        let (last, first) = (numbers.iter().max_by_key(|(_, n)| **n).unwrap(), numbers.iter().min_by_key(|(_, n)| **n));
        assert!(snapshots.waiting(SaleId(1), UserId(*last.0)).is_none(), "not read yet: not fresh");
        tokio::time::sleep(Duration::from_millis(300)).await; // the opening is a set instant
        snapshots.refresh(&engine).await;
        match snapshots.waiting(SaleId(1), UserId(*last.0)) {
            Some(QueuePlace::Waiting { number, position, .. }) => {
                assert_eq!(number, 10);
                assert!((1..=10).contains(&position), "{position}");
            }
            other => panic!("the last in line is answered from memory: {other:?}"),
        }
        assert!(snapshots.waiting(SaleId(1), UserId(*first.unwrap().0)).is_none(), "the front asks the engine");
        assert!(snapshots.waiting(SaleId(1), UserId(99)).is_none(), "an unknown shopper asks the engine");
        engine.close_sale(1).await.unwrap();
        snapshots.refresh(&engine).await;
        assert!(snapshots.waiting(SaleId(1), UserId(*last.0)).is_none(), "a closed room asks the engine");
    }
}
