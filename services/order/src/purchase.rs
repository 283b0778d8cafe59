//! The purchase hot path: local sold-out flag → one atomic reservation in the stock
//! engine → the order committed by the group-commit writer → 202.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
};

use goodsmall_platform::{events::contracts::OrderLine, extract::IdempotencyKey, metrics::{self, Metrics}};
use goodsmall_sale::{Refusal, Reservation, SoldOutFlags, StockEngine};

use crate::{
    domain::PurchaseQuantity,
    orders::NewOrder,
    sales::Sales,
    writer::OrderWriter,
};

pub enum PurchaseOutcome {
    /// Reserved and recorded; `repeated` when the key was seen before.
    Accepted { order_id: String, repeated: bool },
    Refused(Refusal),
}

#[derive(Clone)]
pub struct Purchases {
    engine: StockEngine,
    sales: Sales,
    writer: OrderWriter,
    sold_out: SoldOutFlags,
    /// sale id → (product id, price in cents); read once per sale, not per purchase.
    terms: Arc<RwLock<HashMap<i64, (i64, i64)>>>,
    metrics: Metrics,
}

impl Purchases {
    pub fn new(engine: StockEngine, sales: Sales, writer: OrderWriter, sold_out: SoldOutFlags) -> Self {
        let metrics = writer.metrics().clone();
        Self { engine, sales, writer, sold_out, terms: Arc::default(), metrics }
    }

    /// The route asks [`refuses_outright`](Self::refuses_outright) first (before the
    /// session's logout look-up); here a sold-out sale costs one first-answer read.
    /// Every outcome is counted in `goodsmall_purchases_total{outcome}`.
    pub async fn purchase(&self, sale_id: i64, user_id: i64, key: &IdempotencyKey, quantity: PurchaseQuantity) -> anyhow::Result<PurchaseOutcome> {
        let outcome = self.decide(sale_id, user_id, key, quantity).await;
        self.metrics.drops().purchase(match &outcome {
            Ok(PurchaseOutcome::Accepted { repeated: false, .. }) => metrics::PURCHASE_ACCEPTED,
            Ok(PurchaseOutcome::Accepted { repeated: true, .. }) => metrics::PURCHASE_REPEATED,
            Ok(PurchaseOutcome::Refused(refusal)) => refusal.code(),
            Err(_) => metrics::PURCHASE_ERROR,
        });
        outcome
    }

    async fn decide(&self, sale_id: i64, user_id: i64, key: &IdempotencyKey, quantity: PurchaseQuantity) -> anyhow::Result<PurchaseOutcome> {
        let Some((product_id, price_cents)) = self.terms(sale_id).await? else {
            return Ok(PurchaseOutcome::Refused(Refusal::UnknownSale));
        };
        let line = |quantity| OrderLine { product_id, quantity, unit_price_cents: price_cents };
        if self.sold_out.is_sold_out(sale_id) {
            self.metrics.drops().sold_out_answer("first_answer_read");
            // No script, no write: only a retry of a purchase that succeeded before the
            // sell-out gets past this, with its first answer (one O(1) read).
            return match self.engine.first_answer(sale_id, user_id, key.as_str()).await? {
                Some((order_id, quantity)) => {
                    self.writer.persist_repeat(NewOrder { id: order_id.clone(), user_id, sale_id: Some(sale_id), lines: vec![line(quantity)] }).await?;
                    Ok(PurchaseOutcome::Accepted { order_id, repeated: true })
                }
                None => Ok(PurchaseOutcome::Refused(Refusal::SoldOut)),
            };
        }
        self.metrics.drops().sold_out_answer("not_flagged");
        let new_id = uuid::Uuid::now_v7().to_string();
        let now = goodsmall_platform::clock::now_millis();
        match self.engine.reserve(sale_id, user_id, key.as_str(), quantity.get(), &new_id, now).await? {
            Reservation::Reserved { order_id, quantity, remaining, repeated } => {
                if remaining == 0 {
                    self.sold_out.mark(sale_id);
                }
                // A repeat persists again too: its first attempt may have died before
                // the commit; inserting an existing order is a no-op.
                let order = NewOrder { id: order_id.clone(), user_id, sale_id: Some(sale_id), lines: vec![line(quantity)] };
                if repeated {
                    self.writer.persist_repeat(order).await?;
                } else {
                    self.writer.persist_new(order).await?;
                }
                Ok(PurchaseOutcome::Accepted { order_id, repeated })
            }
            Reservation::Refused(Refusal::UnknownSale) => Ok(PurchaseOutcome::Refused(self.not_in_engine(sale_id).await?)),
            Reservation::Refused(refusal) => {
                if refusal == Refusal::SoldOut {
                    self.sold_out.mark(sale_id);
                }
                Ok(PurchaseOutcome::Refused(refusal))
            }
        }
    }

    /// `SOLD_OUT` from this replica's memory alone: the sale is flagged sold out and the
    /// shopper never reserved in it (so has no earlier answer to be given back).
    /// Counted as a `SOLD_OUT` purchase when it refuses.
    pub fn refuses_outright(&self, sale_id: i64, user_id: i64) -> bool {
        let refused = self.sold_out.refuses_outright(sale_id, user_id);
        if refused {
            self.metrics.drops().sold_out_answer("refused_from_memory");
            self.metrics.drops().purchase(Refusal::SoldOut.code());
        }
        refused
    }

    /// A recorded sale the engine does not hold: not pre-loaded yet (the operator loads
    /// it at the warm-up), or ended and removed.
    async fn not_in_engine(&self, sale_id: i64) -> anyhow::Result<Refusal> {
        let now = chrono::Utc::now();
        Ok(match self.sales.find(sale_id).await? {
            Some(sale) if sale.closed_at.is_some() || now >= sale.closes_at => Refusal::SaleClosed,
            Some(sale) if now < sale.opens_at => Refusal::SaleNotOpen,
            _ => Refusal::UnknownSale,
        })
    }

    async fn terms(&self, sale_id: i64) -> anyhow::Result<Option<(i64, i64)>> {
        if let Some(terms) = self.terms.read().expect("terms map").get(&sale_id) {
            return Ok(Some(*terms));
        }
        let Some(sale) = self.sales.find(sale_id).await? else { return Ok(None) };
        let terms = (sale.product_id, sale.price.cents());
        // Product and price may still change until the sale opens (the FlashSale
        // operator refuses changes after that), so only then are they cached.
        if sale.opens_at <= chrono::Utc::now() {
            self.terms.write().expect("terms map").insert(sale_id, terms);
        }
        Ok(Some(terms))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_metrics_know_every_refusal_code() {
        let engine: Vec<&str> = goodsmall_sale::Refusal::ALL.iter().map(|r| r.code()).collect();
        assert_eq!(engine, goodsmall_platform::metrics::REFUSAL_CODES, "goodsmall_purchases_total's outcomes");
    }
}
