//! The waiting room in-process: `scripts/queue.lua`'s state machine, under the
//! engine's lock (see `queue.rs` for the rules).

use std::collections::{BTreeSet, HashMap};

use crate::{
    memory::MemoryEngine,
    queue::{draw_place_key, QueueCounts, QueuePlace, QueueRefusal, QueueTerms, PRE_QUEUE_KEYS},
    EngineError, SaleCounters,
};

/// Admissions per call at most, as in `queue.lua`.
const BATCH: u64 = 1000;

#[derive(Default)]
pub(crate) struct WaitingRoom {
    /// (place key, user) in place order once `ordered`; in join order before.
    places: Vec<(u64, i64)>,
    /// User → index in `places`.
    index: HashMap<i64, usize>,
    ordered: bool,
    seq: u64,
    admitted: u64,
    /// Earned admissions not used yet, in thousandths.
    credit: i64,
    last_ms: Option<i64>,
    expired: u64,
    /// User → turn's end, every admitted shopper.
    turns: HashMap<i64, i64>,
    /// (turn's end, user) of admitted shoppers who have not bought yet.
    pending: BTreeSet<(i64, i64)>,
}

impl WaitingRoom {
    /// A purchase in the shopper's turn frees the turn's room.
    pub(crate) fn bought(&mut self, user: i64) {
        if let Some(&ends) = self.turns.get(&user) {
            self.pending.remove(&(ends, user));
        }
    }

    fn order_at_opening(&mut self) {
        if self.ordered {
            return;
        }
        self.places.sort_unstable();
        self.index = self.places.iter().enumerate().map(|(i, &(_, user))| (user, i)).collect();
        self.ordered = true;
    }

    fn advance(&mut self, terms: &QueueTerms, c: &SaleCounters, now: i64) {
        if now < c.opens_at_ms || c.closed || now >= c.closes_at_ms {
            return;
        }
        self.order_at_opening();
        let last = self.last_ms.unwrap_or(c.opens_at_ms).max(c.opens_at_ms);
        let still_on = self.pending.split_off(&(now + 1, i64::MIN));
        self.expired += self.pending.len() as u64;
        self.pending = still_on;
        if c.halted || sold_out(c) {
            self.credit = 0;
        } else {
            self.credit += (now - last).max(0) * terms.admit_per_second;
            let room = (c.remaining - self.pending.len() as i64).min(self.places.len() as i64 - self.admitted as i64);
            let n = (self.credit / 1000).min(room).min(BATCH as i64);
            if n > 0 {
                let ends = now + terms.turn_ttl_ms;
                for &(_, user) in &self.places[self.admitted as usize..(self.admitted + n as u64) as usize] {
                    self.turns.insert(user, ends);
                    self.pending.insert((ends, user));
                }
                self.admitted += n as u64;
                self.credit -= n * 1000;
            }
            if room <= n {
                self.credit = self.credit.min(1000);
            }
        }
        self.last_ms = Some(now);
    }

    fn place(&self, terms: &QueueTerms, user: i64, c: &SaleCounters, now: i64) -> Option<QueuePlace> {
        let &rank = self.index.get(&user)?;
        Some(if now < c.opens_at_ms {
            QueuePlace::PreQueue { joined: self.places.len() as u64, opens_at_ms: c.opens_at_ms }
        } else if (rank as u64) < self.admitted {
            match self.turns.get(&user) {
                Some(&ends) if ends > now => QueuePlace::Admitted { turn_ends_ms: ends, number: rank as u64 + 1 },
                _ => QueuePlace::Expired { number: rank as u64 + 1 },
            }
        } else if c.closed || now >= c.closes_at_ms {
            QueuePlace::Closed
        } else if sold_out(c) {
            QueuePlace::SoldOut
        } else {
            QueuePlace::Waiting {
                position: rank as u64 - self.admitted + 1,
                units_left: c.remaining,
                admit_per_second: terms.admit_per_second,
                number: rank as u64 + 1,
            }
        })
    }

    fn join(&mut self, terms: &QueueTerms, user: i64, c: &SaleCounters, now: i64) -> Result<QueuePlace, QueueRefusal> {
        if let Some(place) = self.place(terms, user, c, now) {
            return Ok(place);
        }
        if c.closed || now >= c.closes_at_ms {
            return Err(QueueRefusal::Closed);
        }
        if now < c.opens_at_ms - terms.pre_queue_ms {
            return Err(QueueRefusal::NotOpen);
        }
        if sold_out(c) {
            return Err(QueueRefusal::SoldOut);
        }
        let key = if now < c.opens_at_ms && !self.ordered {
            draw_place_key()
        } else {
            self.seq += 1;
            PRE_QUEUE_KEYS + self.seq
        };
        self.index.insert(user, self.places.len());
        self.places.push((key, user));
        self.place(terms, user, c, now).ok_or(QueueRefusal::NotJoined)
    }

    fn counts(&self) -> QueueCounts {
        QueueCounts {
            joined: self.places.len() as u64,
            admitted: self.admitted,
            expired: self.expired,
            in_turn: self.pending.len() as u64,
        }
    }
}

/// Nothing left and nothing held that could come back.
fn sold_out(c: &SaleCounters) -> bool {
    c.remaining == 0 && c.reserved == 0
}

/// What a queue operation sees of a sale: its terms, counters and room.
type Answer<T> = Result<Result<T, QueueRefusal>, EngineError>;

impl MemoryEngine {
    fn with_room<T>(
        &self,
        sale_id: i64,
        now: i64,
        f: impl FnOnce(&mut WaitingRoom, &QueueTerms, &SaleCounters) -> Result<T, QueueRefusal>,
    ) -> Answer<T> {
        self.with_sale(sale_id, |sale| {
            let Some(terms) = sale.queue_terms else { return Err(QueueRefusal::NoWaitingRoom) };
            sale.room.advance(&terms, &sale.counters, now);
            f(&mut sale.room, &terms, &sale.counters)
        })
        .map(|found| found.unwrap_or(Err(QueueRefusal::UnknownSale)))
    }

    pub async fn join_queue(&self, sale_id: i64, user_id: i64, now_ms: i64) -> Answer<QueuePlace> {
        self.with_room(sale_id, now_ms, |room, terms, c| room.join(terms, user_id, c, now_ms))
    }

    pub async fn queue_place(&self, sale_id: i64, user_id: i64, now_ms: i64) -> Answer<QueuePlace> {
        self.with_room(sale_id, now_ms, |room, terms, c| {
            room.place(terms, user_id, c, now_ms).ok_or(QueueRefusal::NotJoined)
        })
    }

    pub async fn queue_counts(&self, sale_id: i64, now_ms: i64) -> Answer<QueueCounts> {
        self.with_room(sale_id, now_ms, |room, _, _| Ok(room.counts()))
    }
}
