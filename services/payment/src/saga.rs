//! The payment side of the saga: a payment falls due when an order is created, and is
//! closed or refunded when the order is cancelled. Unpaid payments expire on a timer.

use std::{sync::Arc, time::Duration};

use goodsmall_platform::{
    clock::now_millis,
    events::{
        self,
        contracts::{kinds, OrderEvent, ORDERS_TOPIC},
        BatchHandler, Bus, Event,
    },
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::payments::{Due, Payments};

pub fn subscribe(bus: &Bus, payments: Payments, timeout: Duration) {
    let handler: BatchHandler = Arc::new(move |events| {
        let payments = payments.clone();
        Box::pin(async move { on_orders(&payments, timeout, events).await })
    });
    bus.subscribe_batches("payment", &[ORDERS_TOPIC], handler);
}

/// Order events in delivery order. A run of `order.created` opens its payments in one
/// transaction (a drop delivers them by the hundred); a cancellation is handled on its
/// own, after the creations before it, so one order's events keep their order.
async fn on_orders(payments: &Payments, timeout: Duration, events: Vec<Event>) -> anyhow::Result<()> {
    let mut created: Vec<Created> = Vec::new();
    for event in events {
        if event.kind != kinds::ORDER_CREATED && event.kind != kinds::ORDER_CANCELED {
            continue;
        }
        let order: OrderEvent = match event.decode() {
            Ok(o) => o,
            Err(e) => {
                tracing::error!(error = %e, "skipping an undecodable order event");
                continue;
            }
        };
        if event.kind == kinds::ORDER_CREATED {
            created.push(Created { event_id: event.id, order, occurred_at_ms: event.occurred_at_ms });
        } else {
            open_payments(payments, timeout, std::mem::take(&mut created)).await?;
            payments.cancel(&order.order_id).await?;
        }
    }
    open_payments(payments, timeout, created).await
}

/// An `order.created` waiting for its payment.
struct Created {
    event_id: String,
    order: OrderEvent,
    occurred_at_ms: i64,
}

/// Opens the payments of `created` that this consumer has not handled before, in one
/// transaction.
async fn open_payments(payments: &Payments, timeout: Duration, created: Vec<Created>) -> anyhow::Result<()> {
    if created.is_empty() {
        return Ok(());
    }
    let mut tx = payments.database().pool().begin().await?;
    let ids: Vec<&str> = created.iter().map(|c| c.event_id.as_str()).collect();
    let fresh = events::first_times(&mut tx, "payment", &ids).await?;
    let dues: Vec<Due> = created
        .iter()
        .filter(|c| fresh.contains(&c.event_id))
        .map(|c| Due {
            order_id: c.order.order_id.clone(),
            user_id: c.order.user_id,
            amount_cents: c.order.total_cents,
            // The deadline counts from the order, not from when this event arrived.
            deadline_ms: c.occurred_at_ms.min(now_millis()) + timeout.as_millis() as i64,
        })
        .collect();
    payments.open_all(&mut tx, &dues).await?;
    tx.commit().await?;
    Ok(())
}

pub fn run_expiry(payments: Payments, every: Duration, shutdown: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match payments.expire_due().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(expired = n, "unpaid payments expired"),
                Err(e) => tracing::warn!(error = %e, "payment expiry failed"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
        }
    })
}
