//! `order-checkout` reads `checkout.placed` (goodsmall.checkouts.v1) from the product
//! service, whose cart checkout has reserved the units, and makes the order with its
//! `order.created`. Idempotent: the processed-event row commits in the order's
//! transaction, so a redelivered checkout finds it and changes nothing.

use goodsmall_platform::events::{
    contracts::{kinds, OrderEvent, CHECKOUTS_TOPIC},
    Consumer, PerEvent, Received,
};

use crate::orders::{NewOrder, Orders};

pub struct OrderCheckout {
    pub orders: Orders,
}

goodsmall_platform::consumer!(OrderCheckout in "order-checkout" reads OrderEvent;
    from [CHECKOUTS_TOPIC] of [kinds::CHECKOUT_PLACED]);

impl PerEvent for OrderCheckout {
    async fn handle(&self, event: Received<OrderEvent>) -> anyhow::Result<()> {
        let mut tx = self.orders.database().pool().begin().await?;
        if !Self::first_time(&mut tx, &event).await? {
            return Ok(());
        }
        let placed = event.payload;
        let order = NewOrder {
            id: placed.order_id,
            user_id: placed.user_id,
            sale_id: None,
            lines: placed.lines,
            idempotency_key: None,
        };
        Orders::insert(&mut tx, &order).await?;
        tx.commit().await?;
        Ok(())
    }
}
