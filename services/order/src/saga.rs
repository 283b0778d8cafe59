//! The order side of the saga. Three consumers:
//! - `order-checkout` reads `checkout.placed` from the product service and makes the
//!   order (with its `order.created`), once;
//! - `order-saga` reads payment outcomes and moves the order (PROCESSING → COMPLETE,
//!   FAILED or CANCELED), committing the status and its order event together;
//! - `order-stock` reads those order events and settles the stock in the engine
//!   (confirm when paid, release when failed or cancelled). Driving Redis from
//!   committed events means a crash anywhere re-delivers the event and the engine's
//!   exactly-once settle makes the repeat harmless.

use std::sync::Arc;

use goodsmall_platform::events::{
    self,
    contracts::{kinds, OrderEvent, PaymentEvent, CHECKOUTS_TOPIC, ORDERS_TOPIC, PAYMENTS_TOPIC},
    Bus, Event, EventHandler,
};
use goodsmall_sale::StockEngine;

use crate::{
    domain::OrderStatus,
    orders::{NewOrder, Orders},
};

pub fn subscribe(bus: &Bus, orders: Orders, engine: StockEngine) {
    let checkout_orders = orders.clone();
    let checkout: EventHandler = Arc::new(move |event| {
        let orders = checkout_orders.clone();
        Box::pin(async move { on_checkout(&orders, event).await })
    });
    bus.subscribe("order-checkout", &[CHECKOUTS_TOPIC], checkout);
    let saga_orders = orders.clone();
    let saga: EventHandler = Arc::new(move |event| {
        let orders = saga_orders.clone();
        Box::pin(async move { on_payment(&orders, event).await })
    });
    bus.subscribe("order-saga", &[PAYMENTS_TOPIC], saga);
    let stock: EventHandler = Arc::new(move |event| {
        let engine = engine.clone();
        Box::pin(async move { on_order(&engine, event).await })
    });
    bus.subscribe("order-stock", &[ORDERS_TOPIC], stock);
}

async fn on_checkout(orders: &Orders, event: Event) -> anyhow::Result<()> {
    if event.kind != kinds::CHECKOUT_PLACED {
        return Ok(());
    }
    let placed: OrderEvent = match event.decode() {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "skipping an undecodable checkout event");
            return Ok(());
        }
    };
    let mut tx = orders.database().pool().begin().await?;
    if !events::first_time(&mut tx, "order-checkout", &event.id).await? {
        return Ok(());
    }
    let order = NewOrder { id: placed.order_id, user_id: placed.user_id, sale_id: None, lines: placed.lines, idempotency_key: None };
    Orders::insert(&mut tx, &order).await?;
    tx.commit().await?;
    Ok(())
}

async fn on_payment(orders: &Orders, event: Event) -> anyhow::Result<()> {
    let (to, order_kind) = match event.kind.as_str() {
        kinds::PAYMENT_SUCCEEDED => (OrderStatus::Complete, kinds::ORDER_COMPLETED),
        kinds::PAYMENT_FAILED => (OrderStatus::Failed, kinds::ORDER_FAILED),
        kinds::PAYMENT_EXPIRED => (OrderStatus::Canceled, kinds::ORDER_CANCELED),
        _ => return Ok(()),
    };
    let payment: PaymentEvent = match event.decode() {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "skipping an undecodable payment event");
            return Ok(());
        }
    };
    let Some(order) = orders.find(&payment.order_id).await? else {
        tracing::warn!(order_id = payment.order_id, kind = event.kind, "payment event for an unknown order");
        return Ok(());
    };
    let db = orders.database();
    let mut tx = db.pool().begin().await?;
    if !events::first_time(&mut tx, "order-saga", &event.id).await? {
        return Ok(());
    }
    // Conditional: a payment outcome for an order already cancelled changes nothing
    // (the payment service refunds it on `order.canceled`).
    let moved = Orders::transition_in(&mut tx, &order.id, &[OrderStatus::Processing], to).await?;
    if moved {
        let payload = order.event(false);
        events::append(&mut tx, &Event::new(ORDERS_TOPIC, order_kind, &order.id, payload)).await?;
    }
    tx.commit().await?;
    if moved {
        crate::sale_metrics::order_settled(db.metrics(), &order.id, to.as_str());
    }
    Ok(())
}

async fn on_order(engine: &StockEngine, event: Event) -> anyhow::Result<()> {
    let release = match event.kind.as_str() {
        kinds::ORDER_COMPLETED => false,
        kinds::ORDER_FAILED | kinds::ORDER_CANCELED => true,
        _ => return Ok(()),
    };
    let order: OrderEvent = match event.decode() {
        Ok(o) => o,
        Err(e) => {
            tracing::error!(error = %e, "skipping an undecodable order event");
            return Ok(());
        }
    };
    match (order.sale_id, release) {
        (Some(sale_id), false) => {
            engine.confirm(sale_id, &order.order_id).await?;
        }
        (Some(sale_id), true) => {
            engine.release(sale_id, &order.order_id).await?;
        }
        (None, false) => {}
        (None, true) => {
            engine.release_products(&order.order_id).await?;
        }
    }
    Ok(())
}
