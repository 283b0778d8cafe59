//! The purchase hot path: local sold-out flag → one atomic reservation in the stock
//! engine → the order committed by the group-commit writer → 202.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
};

use goodsmall_platform::{
    events::contracts::OrderLine,
    extract::IdempotencyKey,
    metrics::{self, Metrics},
    money::Price,
};
use goodsmall_sale::{
    EngineError, KeyRecord, Refusal, Reservation, ReservationRequest, SaleId, SoldOutFlags, StockEngine, UserId,
};

use crate::{
    domain::{OrderStatus, PurchaseQuantity},
    orders::{NewOrder, OrderRecordError, Orders},
    sales::{Sales, SalesError},
    writer::{CommitError, OrderWriter, Recorded},
};

/// Why a purchase could not be decided (a refusal is an outcome, not an error). The
/// failure is the source; `routes` answers each (an unreachable Redis or database is
/// a 503 the shopper retries with the same key, anything else a 500).
#[derive(Debug, thiserror::Error)]
pub enum PurchaseError {
    #[error("purchase: the stock engine failed")]
    Engine(#[from] EngineError),
    #[error("purchase: reading the sale failed")]
    Sale(#[from] SalesError),
    #[error("purchase: looking up the Idempotency-Key's order failed")]
    KeyLookup(#[source] sqlx::Error),
    #[error("purchase: the order was not committed")]
    Commit(#[from] CommitError),
    #[error("purchase: reading order {order_id}'s status failed")]
    OrderStatus {
        order_id: String,
        #[source]
        source: OrderRecordError,
    },
    #[error("purchase: order {0} is not recorded")]
    OrderMissing(String),
}

pub type PurchaseResult<T> = Result<T, PurchaseError>;

pub enum PurchaseOutcome {
    /// Reserved and recorded; `repeated` when the key was seen before. `status` is the
    /// order's status now (a new order's is `PROCESSING`).
    Accepted {
        order_id: String,
        repeated: bool,
        status: OrderStatus,
    },
    Refused(Refusal),
    /// Not decided, nothing held: the stock store lost the sale while this purchase was
    /// being recorded, or is still being rebuilt. A retry with the same key decides anew.
    Retry,
}

#[derive(Clone)]
pub struct Purchases {
    engine: StockEngine,
    sales: Sales,
    orders: Orders,
    writer: OrderWriter,
    sold_out: SoldOutFlags,
    /// What each sale offers; read once per sale, not per purchase.
    offers: Arc<RwLock<HashMap<SaleId, Offer>>>,
    metrics: Metrics,
}

/// What a sale offers: its product at its price, what every order line of it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Offer {
    product_id: i64,
    price: Price,
}

/// One purchase request, as the writer records it.
struct Request<'a> {
    sale: SaleId,
    user: UserId,
    key: &'a str,
    offer: Offer,
    /// The end of the shopper's turn, from a verified admission (a sale with a waiting room).
    turn_ends_ms: Option<i64>,
}

/// Refusals behind which a first answer may hide when the engine lost part of its data
/// without losing the sale (a failover to a replica that had not caught up): for these
/// the orders table is asked. Not before the opening (no order can exist) nor while
/// halted (a drop's whole crowd may be answered so).
const MAY_HIDE_A_FIRST_ANSWER: [Refusal; 5] = [
    Refusal::SoldOut,
    Refusal::InsufficientStock,
    Refusal::PurchaseLimit,
    Refusal::SaleClosed,
    Refusal::AdmissionExpired,
];

impl Purchases {
    pub fn new(engine: StockEngine, sales: Sales, orders: Orders, writer: OrderWriter, sold_out: SoldOutFlags) -> Self {
        let metrics = writer.metrics().clone();
        count_outcomes(&metrics);
        Self { engine, sales, orders, writer, sold_out, offers: Arc::default(), metrics }
    }

    /// The route asks [`refuses_outright`](Self::refuses_outright) first (before the
    /// session's logout look-up); here a sold-out sale costs one first-answer read.
    /// Every outcome is counted in `goodsmall_purchases_total{outcome}`. `turn_ends_ms`:
    /// the end of the shopper's turn, from an admission the caller verified.
    pub async fn purchase(
        &self,
        sale: SaleId,
        user: UserId,
        key: &IdempotencyKey,
        quantity: PurchaseQuantity,
        turn_ends_ms: Option<i64>,
    ) -> PurchaseResult<PurchaseOutcome> {
        let outcome = self.decide(sale, user, key, quantity, turn_ends_ms).await;
        self.metrics.drops().purchase(match &outcome {
            Ok(PurchaseOutcome::Accepted { repeated: false, .. }) => metrics::PURCHASE_ACCEPTED,
            Ok(PurchaseOutcome::Accepted { repeated: true, .. }) => metrics::PURCHASE_REPEATED,
            Ok(PurchaseOutcome::Refused(refusal)) => refusal.code().as_str(),
            Ok(PurchaseOutcome::Retry) | Err(_) => metrics::PURCHASE_ERROR,
        });
        outcome
    }

    async fn decide(
        &self,
        sale: SaleId,
        user: UserId,
        key: &IdempotencyKey,
        quantity: PurchaseQuantity,
        turn_ends_ms: Option<i64>,
    ) -> PurchaseResult<PurchaseOutcome> {
        let Some(offer) = self.offer(sale).await? else {
            return Ok(PurchaseOutcome::Refused(Refusal::UnknownSale));
        };
        let request = Request { sale, user, key: key.as_str(), offer, turn_ends_ms };
        if self.sold_out.is_sold_out(sale.0) {
            self.metrics.drops().sold_out_answer("first_answer_read");
            // No script, no write: only a retry of a purchase that succeeded before the
            // sell-out gets past this, with its first answer (one O(1) read). A sale the
            // store lost meanwhile is decided by the engine, once rebuilt.
            match self.engine.first_answer(sale, user, key.as_str()).await? {
                KeyRecord::First(first) => {
                    return self.record(&request, first.order_id, first.quantity, first.epoch, true).await
                }
                KeyRecord::NoAnswer => return Ok(PurchaseOutcome::Refused(Refusal::SoldOut)),
                KeyRecord::NoSale => {}
            }
        } else {
            self.metrics.drops().sold_out_answer("not_flagged");
        }
        let mut reservation = self.reserve(&request, quantity).await?;
        if reservation == Reservation::Refused(Refusal::UnknownSale) {
            if let Some(refusal) = self.not_in_engine(sale).await? {
                return Ok(PurchaseOutcome::Refused(refusal));
            }
            reservation = self.reserve(&request, quantity).await?;
        }
        match reservation {
            Reservation::Reserved { order_id, quantity, remaining, repeated, epoch } => {
                if remaining == 0 {
                    self.sold_out.mark(sale.0);
                }
                // A repeat persists again too: its first attempt may have died before
                // the commit; inserting an existing order is a no-op.
                self.record(&request, order_id, quantity, epoch, repeated).await
            }
            // Rebuilt a moment ago and gone again: the store is not answering as it should.
            Reservation::Refused(Refusal::UnknownSale) => Ok(PurchaseOutcome::Retry),
            Reservation::Refused(refusal) => {
                if refusal == Refusal::SoldOut {
                    self.sold_out.mark(sale.0);
                }
                if MAY_HIDE_A_FIRST_ANSWER.contains(&refusal) {
                    if let Some(first) =
                        self.orders.find_by_key(user, sale, key.as_str()).await.map_err(PurchaseError::KeyLookup)?
                    {
                        return self.first_answer(first).await;
                    }
                }
                Ok(PurchaseOutcome::Refused(refusal))
            }
        }
    }

    async fn reserve(&self, request: &Request<'_>, quantity: PurchaseQuantity) -> PurchaseResult<Reservation> {
        let new_id = uuid::Uuid::now_v7().to_string();
        let now = goodsmall_platform::clock::now_millis();
        let reservation = ReservationRequest {
            sale: request.sale,
            user: request.user,
            key: request.key,
            quantity: quantity.units(),
            order: &new_id,
            at_ms: now,
            turn_ends_ms: request.turn_ends_ms,
        };
        Ok(self.engine.reserve(&reservation).await?)
    }

    /// Commits the reserved purchase's order (reserved in the sale's `epoch`) and says
    /// what the shopper is answered.
    async fn record(
        &self,
        request: &Request<'_>,
        order_id: String,
        quantity: i64,
        epoch: i64,
        repeated: bool,
    ) -> PurchaseResult<PurchaseOutcome> {
        let order = NewOrder {
            id: order_id.clone(),
            user_id: request.user.0,
            sale_id: Some(request.sale.0),
            lines: vec![OrderLine {
                product_id: request.offer.product_id,
                quantity,
                unit_price_cents: request.offer.price.cents(),
            }],
            idempotency_key: Some(request.key.to_owned()),
        };
        let recorded = if repeated {
            self.writer.persist_repeat(order, epoch).await
        } else {
            self.writer.persist_new(order, epoch).await
        };
        match recorded {
            Ok(Recorded::Committed) if !repeated => {
                Ok(PurchaseOutcome::Accepted { order_id, repeated, status: OrderStatus::Processing })
            }
            Ok(Recorded::Committed) => self.first_answer(order_id).await,
            Ok(Recorded::KeyTaken { first_order_id }) => {
                // The engine did not know the key's order (it lost it): this reservation
                // is not an order, so its units go back, and the first order is the answer.
                self.engine.release(request.sale.0, &order_id).await?;
                self.first_answer(first_order_id).await
            }
            Err(CommitError::ReservationLost { .. } | CommitError::Undecided { .. }) => Ok(PurchaseOutcome::Retry),
            Err(e) => Err(e.into()),
        }
    }

    /// A committed order given back to a repeated purchase, with its status now.
    async fn first_answer(&self, order_id: String) -> PurchaseResult<PurchaseOutcome> {
        let status = match self.orders.status(&order_id).await {
            Ok(Some(status)) => status,
            Ok(None) => return Err(PurchaseError::OrderMissing(order_id)),
            Err(source) => return Err(PurchaseError::OrderStatus { order_id, source }),
        };
        Ok(PurchaseOutcome::Accepted { order_id, repeated: true, status })
    }

    /// `SOLD_OUT` from this replica's memory alone: the sale is flagged sold out and the
    /// shopper never reserved in it (so has no earlier answer to be given back).
    /// `shopper` is asked only for a flagged sale, so a sale still selling pays nothing
    /// for it. Counted as a `SOLD_OUT` purchase when it refuses.
    pub fn refuses_outright(&self, sale: SaleId, shopper: impl FnOnce() -> Option<UserId>) -> bool {
        let refused = self.sold_out.is_sold_out(sale.0)
            && shopper().is_some_and(|user| self.sold_out.refuses_outright(sale, user));
        if refused {
            self.metrics.drops().sold_out_answer("refused_from_memory");
            self.metrics.drops().purchase(Refusal::SoldOut.code().as_str());
        }
        refused
    }

    /// A recorded sale the engine does not hold: not pre-loaded yet (the operator loads
    /// it at the warm-up), ended and removed, or lost with the store's data. An open
    /// sale is rebuilt from its orders before answering (`None`: ask the engine again),
    /// so an existing sale is never answered `SALE_NOT_FOUND`.
    async fn not_in_engine(&self, sale: SaleId) -> PurchaseResult<Option<Refusal>> {
        let now = chrono::Utc::now();
        Ok(match self.sales.find(sale.0).await? {
            Some(sale) if sale.closed_at.is_some() || now >= sale.closes_at => Some(Refusal::SaleClosed),
            Some(sale) if now < sale.opens_at => Some(Refusal::SaleNotOpen),
            Some(sale) => {
                self.sales.restore(&sale).await?;
                None
            }
            None => Some(Refusal::UnknownSale),
        })
    }

    async fn offer(&self, id: SaleId) -> PurchaseResult<Option<Offer>> {
        if let Some(offer) = self.offers.read().expect("offers map").get(&id) {
            return Ok(Some(*offer));
        }
        let Some(sale) = self.sales.find(id.0).await? else { return Ok(None) };
        let offer = Offer { product_id: sale.product_id, price: sale.price };
        // Product and price may still change until the sale opens (the FlashSale
        // operator refuses changes after that), so only then are they cached.
        if sale.opens_at <= chrono::Utc::now() {
            self.offers.write().expect("offers map").insert(id, offer);
        }
        Ok(Some(offer))
    }
}

/// `goodsmall_purchases_total{outcome}` starts at 0 for every refusal the engine can
/// answer (its code is the label), so a rate over any of them is 0 rather than absent.
fn count_outcomes(metrics: &Metrics) {
    metrics.drops().purchase_outcomes(Refusal::ALL.iter().map(|r| r.code().as_str()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metrics_know_every_refusal_code() {
        let metrics = Metrics::new();
        count_outcomes(&metrics);
        let exposed = metrics.render();
        for refusal in Refusal::ALL {
            let series = format!("goodsmall_purchases_total{{outcome=\"{}\"}} 0", refusal.code());
            assert!(exposed.contains(&series), "goodsmall_purchases_total's outcomes: no {series} in\n{exposed}");
        }
    }
}
