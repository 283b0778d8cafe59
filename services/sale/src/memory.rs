//! The in-process backend for the one-process default: the same state machine as the
//! Lua scripts, each operation under one lock (as each script runs alone in Redis).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use crate::{
    memory_queue::WaitingRoom, queue::QueueTerms, EngineError, FirstAnswer, KeyRecord, LoadOutcome, OpenReservation,
    RecordedOrder, Refusal, Reservation, ReservationRequest, SaleCounters, SaleDefinition, Settle, Units, FIRST_EPOCH,
};

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Reserved,
    Sold,
    Released,
}

pub(crate) struct Sale {
    pub(crate) counters: SaleCounters,
    pub(crate) queue_terms: Option<QueueTerms>,
    pub(crate) room: WaitingRoom,
    epoch: i64,
    buyers: HashMap<i64, i64>,
    idempotency: HashMap<(i64, String), String>,
    reservations: HashMap<String, (i64, i64, State)>,
}

#[derive(Default)]
struct Store {
    sales: HashMap<i64, Sale>,
    product_stock: HashMap<i64, i64>,
    /// Order id → (lines, released). Kept after release so a late repeat of the
    /// reservation is still recognised and changes nothing.
    product_orders: HashMap<String, (Vec<(i64, i64)>, bool)>,
}

#[derive(Clone, Default)]
pub struct MemoryEngine(Arc<Mutex<Store>>);

impl MemoryEngine {
    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `f` on the sale under the lock; `None` when there is no such sale.
    pub(crate) fn with_sale<T>(&self, sale_id: i64, f: impl FnOnce(&mut Sale) -> T) -> Result<Option<T>, EngineError> {
        Ok(self.store().sales.get_mut(&sale_id).map(f))
    }

    pub async fn load_sale(&self, d: &SaleDefinition) -> Result<LoadOutcome, EngineError> {
        self.load(d, true).await?.ok_or_else(|| EngineError::Protocol("load: a created sale is absent".into()))
    }

    pub async fn update_sale(&self, d: &SaleDefinition) -> Result<Option<LoadOutcome>, EngineError> {
        self.load(d, false).await
    }

    async fn load(&self, d: &SaleDefinition, create: bool) -> Result<Option<LoadOutcome>, EngineError> {
        let mut store = self.store();
        let terms = |c: &mut SaleCounters| {
            c.product_id = d.product_id;
            c.price_cents = d.price_cents;
            c.opens_at_ms = d.opens_at_ms;
            c.closes_at_ms = d.closes_at_ms;
            c.per_user_limit = d.per_user_limit;
        };
        let Some(sale) = store.sales.get_mut(&d.sale_id) else {
            if !create {
                return Ok(None);
            }
            let mut counters = SaleCounters {
                sale_id: d.sale_id,
                product_id: 0,
                initial: d.stock,
                remaining: d.stock,
                reserved: 0,
                sold: 0,
                price_cents: 0,
                opens_at_ms: 0,
                closes_at_ms: 0,
                per_user_limit: 0,
                closed: false,
                halted: false,
            };
            terms(&mut counters);
            let sale = Sale {
                counters,
                queue_terms: d.queue,
                room: WaitingRoom::default(),
                epoch: FIRST_EPOCH,
                buyers: HashMap::new(),
                idempotency: HashMap::new(),
                reservations: HashMap::new(),
            };
            store.sales.insert(d.sale_id, sale);
            return Ok(Some(LoadOutcome::Created));
        };
        let c = &mut sale.counters;
        if d.stock < c.reserved + c.sold {
            return Err(EngineError::StockBelowCommitted {
                sale_id: d.sale_id,
                stock: d.stock,
                committed: c.reserved + c.sold,
            });
        }
        let before = (*c, sale.queue_terms);
        c.remaining += d.stock - c.initial;
        c.initial = d.stock;
        terms(c);
        sale.queue_terms = d.queue;
        Ok(Some(if (*c, sale.queue_terms) == before { LoadOutcome::Unchanged } else { LoadOutcome::Updated }))
    }

    pub async fn restore_sale(
        &self,
        d: &SaleDefinition,
        closed: bool,
        epoch: i64,
        orders: &[RecordedOrder],
    ) -> Result<bool, EngineError> {
        let mut store = self.store();
        if store.sales.contains_key(&d.sale_id) {
            return Ok(false);
        }
        let mut sale = Sale {
            counters: SaleCounters::rebuilt(d, closed, orders),
            queue_terms: d.queue,
            room: WaitingRoom::default(),
            epoch,
            buyers: HashMap::new(),
            idempotency: HashMap::new(),
            reservations: HashMap::new(),
        };
        for o in orders {
            let state = match o.units {
                Units::Reserved => State::Reserved,
                Units::Sold => State::Sold,
                Units::Released => State::Released,
            };
            *sale.buyers.entry(o.user_id).or_default() += o.held();
            sale.reservations.insert(o.order_id.clone(), (o.user_id, o.quantity, state));
            if let Some(key) = &o.idempotency_key {
                sale.idempotency.insert((o.user_id, key.clone()), o.order_id.clone());
            }
        }
        store.sales.insert(d.sale_id, sale);
        Ok(true)
    }

    pub async fn remove_sale(&self, sale_id: i64) -> Result<bool, EngineError> {
        Ok(self.store().sales.remove(&sale_id).is_some())
    }

    pub async fn close_sale(&self, sale_id: i64) -> Result<bool, EngineError> {
        Ok(self.store().sales.get_mut(&sale_id).map(|s| s.counters.closed = true).is_some())
    }

    pub async fn set_halted(&self, sale_id: i64, halted: bool) -> Result<bool, EngineError> {
        Ok(self.store().sales.get_mut(&sale_id).map(|s| s.counters.halted = halted).is_some())
    }

    pub async fn counters(&self, sale_id: i64) -> Result<Option<SaleCounters>, EngineError> {
        Ok(self.store().sales.get(&sale_id).map(|s| s.counters))
    }

    pub async fn held_by(&self, sale_id: i64, user_id: i64) -> Result<i64, EngineError> {
        Ok(self.store().sales.get(&sale_id).and_then(|s| s.buyers.get(&user_id).copied()).unwrap_or(0))
    }

    pub async fn reserve(&self, r: &ReservationRequest<'_>) -> Result<Reservation, EngineError> {
        let (sale_id, user_id, key, quantity, order_id, now_ms) =
            (r.sale.0, r.user.0, r.key, r.quantity.get(), r.order, r.at_ms);
        let mut store = self.store();
        let Some(sale) = store.sales.get_mut(&sale_id) else { return Ok(Reservation::Refused(Refusal::UnknownSale)) };
        if let Some(first) = sale.idempotency.get(&(user_id, key.to_owned())) {
            let quantity = sale.reservations.get(first).map_or(0, |r| r.1);
            return Ok(Reservation::Reserved {
                order_id: first.clone(),
                quantity,
                remaining: sale.counters.remaining,
                repeated: true,
                epoch: sale.epoch,
            });
        }
        let c = &mut sale.counters;
        let refusal = if c.closed || now_ms >= c.closes_at_ms {
            Some(Refusal::SaleClosed)
        } else if c.halted {
            Some(Refusal::Halted)
        } else if now_ms < c.opens_at_ms {
            Some(Refusal::SaleNotOpen)
        } else if c.remaining <= 0 {
            Some(Refusal::SoldOut)
        } else if sale.queue_terms.is_some() && r.turn_ends_ms.is_none() {
            Some(Refusal::AdmissionRequired)
        } else if sale.queue_terms.is_some() && r.turn_ends_ms.is_some_and(|ends| ends <= now_ms) {
            Some(Refusal::AdmissionExpired)
        } else if quantity > c.remaining {
            Some(Refusal::InsufficientStock)
        } else if sale.buyers.get(&user_id).copied().unwrap_or(0) + quantity > c.per_user_limit {
            Some(Refusal::PurchaseLimit)
        } else {
            None
        };
        if let Some(refusal) = refusal {
            return Ok(Reservation::Refused(refusal));
        }
        c.remaining -= quantity;
        c.reserved += quantity;
        *sale.buyers.entry(user_id).or_default() += quantity;
        sale.idempotency.insert((user_id, key.to_owned()), order_id.to_owned());
        sale.reservations.insert(order_id.to_owned(), (user_id, quantity, State::Reserved));
        if sale.queue_terms.is_some() {
            sale.room.bought(user_id);
        }
        Ok(Reservation::Reserved {
            order_id: order_id.to_owned(),
            quantity,
            remaining: c.remaining,
            repeated: false,
            epoch: sale.epoch,
        })
    }

    pub async fn settle(&self, sale_id: i64, order_id: &str, confirm: bool) -> Result<Settle, EngineError> {
        let mut store = self.store();
        let Some(sale) = store.sales.get_mut(&sale_id) else { return Ok(Settle::Unknown) };
        let Some(reservation) = sale.reservations.get_mut(order_id) else { return Ok(Settle::Unknown) };
        let (user, quantity, state) = *reservation;
        let c = &mut sale.counters;
        match (confirm, state) {
            (true, State::Reserved) => {
                c.reserved -= quantity;
                c.sold += quantity;
                reservation.2 = State::Sold;
                Ok(Settle::Confirmed)
            }
            (false, State::Reserved | State::Sold) => {
                if state == State::Reserved {
                    c.reserved -= quantity;
                } else {
                    c.sold -= quantity;
                }
                c.remaining += quantity;
                *sale.buyers.entry(user).or_default() -= quantity;
                reservation.2 = State::Released;
                Ok(Settle::Released)
            }
            _ => Ok(Settle::AlreadySettled),
        }
    }

    pub async fn set_product_stock(&self, product_id: i64, available: i64) -> Result<(), EngineError> {
        self.store().product_stock.insert(product_id, available);
        Ok(())
    }

    pub async fn seed_product_stock(&self, product_id: i64, available: i64) -> Result<bool, EngineError> {
        let mut store = self.store();
        if store.product_stock.contains_key(&product_id) {
            return Ok(false);
        }
        store.product_stock.insert(product_id, available);
        Ok(true)
    }

    pub async fn buyer_count(&self, sale_id: i64) -> Result<usize, EngineError> {
        Ok(self.store().sales.get(&sale_id).map_or(0, |s| s.buyers.len()))
    }

    pub async fn buyers(
        &self,
        sale_id: i64,
        at_most: usize,
    ) -> Result<Option<std::collections::HashSet<i64>>, EngineError> {
        let store = self.store();
        let Some(sale) = store.sales.get(&sale_id) else { return Ok(Some(Default::default())) };
        Ok((sale.buyers.len() <= at_most).then(|| sale.buyers.keys().copied().collect()))
    }

    pub async fn first_answer(&self, sale_id: i64, user_id: i64, key: &str) -> Result<KeyRecord, EngineError> {
        let store = self.store();
        let Some(sale) = store.sales.get(&sale_id) else { return Ok(KeyRecord::NoSale) };
        let Some(order) = sale.idempotency.get(&(user_id, key.to_owned())) else { return Ok(KeyRecord::NoAnswer) };
        Ok(KeyRecord::First(FirstAnswer {
            order_id: order.clone(),
            quantity: sale.reservations.get(order).map_or(0, |r| r.1),
            epoch: sale.epoch,
        }))
    }

    pub async fn open_reservations(&self, sale_id: i64) -> Result<Vec<OpenReservation>, EngineError> {
        let store = self.store();
        let Some(sale) = store.sales.get(&sale_id) else { return Ok(Vec::new()) };
        Ok(sale
            .reservations
            .iter()
            .filter(|(_, r)| r.2 == State::Reserved)
            .map(|(order_id, &(user_id, quantity, _))| OpenReservation {
                order_id: order_id.clone(),
                user_id,
                quantity,
            })
            .collect())
    }

    pub async fn product_stock(&self, product_id: i64) -> Result<Option<i64>, EngineError> {
        Ok(self.store().product_stock.get(&product_id).copied())
    }

    pub async fn reserve_products(&self, order_id: &str, lines: &[(i64, i64)]) -> Result<Result<(), i64>, EngineError> {
        let mut store = self.store();
        if store.product_orders.contains_key(order_id) {
            return Ok(Ok(()));
        }
        if let Some((short, _)) = lines.iter().find(|(p, q)| store.product_stock.get(p).copied().unwrap_or(-1) < *q) {
            return Ok(Err(*short));
        }
        for (product_id, quantity) in lines {
            *store.product_stock.entry(*product_id).or_default() -= quantity;
        }
        store.product_orders.insert(order_id.to_owned(), (lines.to_vec(), false));
        Ok(Ok(()))
    }

    pub async fn release_products(&self, order_id: &str) -> Result<bool, EngineError> {
        let mut store = self.store();
        let store = &mut *store;
        let Some((lines, released @ false)) = store.product_orders.get_mut(order_id) else { return Ok(false) };
        *released = true;
        for (product_id, quantity) in lines.iter() {
            *store.product_stock.entry(*product_id).or_default() += quantity;
        }
        Ok(true)
    }
}
