//! `order-saga` reads the payment outcomes (goodsmall.payments.v1) and moves the order
//! from PROCESSING to COMPLETE, FAILED or CANCELED, committing the status and the
//! order event that announces it together. Idempotent twice over: the processed-event
//! row commits in the same transaction, and the move is conditional on PROCESSING, so
//! an outcome for an order already settled (or cancelled) changes nothing.

use goodsmall_platform::events::{
    self,
    contracts::{kinds, PaymentEvent, ORDERS_TOPIC, PAYMENTS_TOPIC},
    Consumer, Event, PerEvent, Received,
};

use crate::{domain::OrderStatus, orders::Orders};

pub struct OrderSaga {
    pub orders: Orders,
}

goodsmall_platform::consumer!(OrderSaga in "order-saga" reads PaymentEvent;
    from [PAYMENTS_TOPIC] of [kinds::PAYMENT_SUCCEEDED, kinds::PAYMENT_FAILED, kinds::PAYMENT_EXPIRED]);

impl PerEvent for OrderSaga {
    async fn handle(&self, event: Received<PaymentEvent>) -> anyhow::Result<()> {
        let (to, order_kind) = match event.kind {
            kinds::PAYMENT_SUCCEEDED => (OrderStatus::Complete, kinds::ORDER_COMPLETED),
            kinds::PAYMENT_FAILED => (OrderStatus::Failed, kinds::ORDER_FAILED),
            kinds::PAYMENT_EXPIRED => (OrderStatus::Canceled, kinds::ORDER_CANCELED),
            other => unreachable!("{other} is not one of {:?}", Self::KINDS),
        };
        let Some(order) = self.orders.find(&event.payload.order_id).await? else {
            tracing::warn!(order_id = event.payload.order_id, kind = event.kind, "payment event for an unknown order");
            return Ok(());
        };
        let db = self.orders.database();
        let mut tx = db.pool().begin().await?;
        if !Self::first_time(&mut tx, &event).await? {
            return Ok(());
        }
        // Conditional: a payment outcome for an order already cancelled changes nothing
        // (the payment service refunds it on `order.canceled`).
        let moved = Orders::transition_in(&mut tx, &order.id, &[OrderStatus::Processing], to).await?;
        if moved {
            let payload = order.event(false);
            events::append(&mut tx, Event::new(ORDERS_TOPIC, order_kind, &order.id, payload)).await?;
        }
        tx.commit().await?;
        if moved {
            crate::sale_metrics::order_settled(db.metrics(), &order.id, to.as_str());
        }
        Ok(())
    }
}
