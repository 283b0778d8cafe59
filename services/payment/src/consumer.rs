//! `payment` reads the order events (goodsmall.orders.v1): a payment falls due when an
//! order is created, and is closed or refunded when the order is cancelled. It takes
//! what arrived together: a run of `order.created` opens its payments in one
//! transaction (a drop delivers them by the hundred); a cancellation is handled on its
//! own, after the creations before it, so one order's events keep their order.
//! Idempotent by the natural key, with no processed-event row: `open_all` opens at most
//! one payment per order (the payment's primary key is the order id, and payments are
//! never deleted), so a redelivered creation finds its payment, whatever became of it;
//! a cancellation is a conditional settlement, so a repeat finds nothing left to close
//! or refund (docs/decisions.md, "The payment consumer keeps no processed events").

use std::time::Duration;

use goodsmall_platform::{
    clock::now_millis,
    db::HeldConnection,
    events::{
        contracts::{kinds, OrderEvent, ORDERS_TOPIC},
        PerBatch, Received,
    },
};

use sqlx::Acquire;

use crate::payments::{Due, Payments};

/// Subscribed with `bus.consume_batches`.
pub struct PaymentConsumer {
    payments: Payments,
    /// How long after its order a payment may be paid.
    timeout: Duration,
    /// Kept from batch to batch (batches come one at a time, so it is never waited for).
    connection: tokio::sync::Mutex<HeldConnection>,
}

goodsmall_platform::consumer!(PaymentConsumer in "payment" reads OrderEvent;
    from [ORDERS_TOPIC] of [kinds::ORDER_CREATED, kinds::ORDER_CANCELED]);

impl PerBatch for PaymentConsumer {
    async fn handle_batch(&self, events: Vec<Received<OrderEvent>>) -> anyhow::Result<()> {
        let mut created = Vec::new();
        for event in events {
            if event.kind == kinds::ORDER_CREATED {
                created.push(event);
            } else {
                self.open(std::mem::take(&mut created)).await?;
                self.payments.cancel(&event.payload.order_id).await?;
            }
        }
        self.open(created).await
    }
}

impl PaymentConsumer {
    pub fn new(payments: Payments, timeout: Duration) -> Self {
        Self { payments, timeout, connection: Default::default() }
    }

    /// Opens the payments of the `order.created` events whose order has none yet, in one
    /// transaction.
    async fn open(&self, created: Vec<Received<OrderEvent>>) -> anyhow::Result<()> {
        if created.is_empty() {
            return Ok(());
        }
        let mut connection = self.connection.lock().await;
        let opened = self.open_on(&mut connection, created).await;
        if opened.is_err() {
            connection.discard();
        }
        opened
    }

    async fn open_on(&self, connection: &mut HeldConnection, created: Vec<Received<OrderEvent>>) -> anyhow::Result<()> {
        let mut lease = connection.get(self.payments.database()).await?;
        let mut tx = lease.begin().await?;
        let dues: Vec<Due> = created
            .into_iter()
            .map(|c| Due {
                order_id: c.payload.order_id,
                user_id: c.payload.user_id,
                amount_cents: c.payload.total_cents,
                // The deadline counts from the order, not from when this event arrived.
                deadline_ms: c.occurred_at_ms.min(now_millis()) + self.timeout.as_millis() as i64,
            })
            .collect();
        self.payments.open_all(&mut tx, &dues).await?;
        tx.commit().await?;
        Ok(())
    }
}
