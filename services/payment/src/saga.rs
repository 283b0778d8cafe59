//! The payment side of the saga: a payment falls due when an order is created, and is
//! closed or refunded when the order is cancelled. Unpaid payments expire on a timer.

use std::{sync::Arc, time::Duration};

use goodsmall_platform::{
    clock::now_millis,
    events::{
        self,
        contracts::{kinds, OrderEvent, ORDERS_TOPIC},
        Bus, Event, EventHandler,
    },
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::payments::Payments;

pub fn subscribe(bus: &Bus, payments: Payments, timeout: Duration) {
    let handler: EventHandler = Arc::new(move |event| {
        let payments = payments.clone();
        Box::pin(async move { on_order(&payments, timeout, event).await })
    });
    bus.subscribe("payment", &[ORDERS_TOPIC], handler);
}

async fn on_order(payments: &Payments, timeout: Duration, event: Event) -> anyhow::Result<()> {
    if event.kind != kinds::ORDER_CREATED && event.kind != kinds::ORDER_CANCELED {
        return Ok(());
    }
    let order: OrderEvent = match event.decode() {
        Ok(o) => o,
        Err(e) => {
            tracing::error!(error = %e, "skipping an undecodable order event");
            return Ok(());
        }
    };
    if event.kind == kinds::ORDER_CANCELED {
        return payments.cancel(&order.order_id).await;
    }
    let mut tx = payments.database().pool().begin().await?;
    if events::first_time(&mut tx, "payment", &event.id).await? {
        // The deadline counts from the order, not from when this event arrived.
        let deadline = event.occurred_at_ms.min(now_millis()) + timeout.as_millis() as i64;
        payments.open(&mut tx, &order.order_id, order.user_id, order.total_cents, deadline).await?;
    }
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
