//! `order-stock` reads the order events (goodsmall.orders.v1) that settle an order and
//! settles its stock in the engine: confirms the units when it was paid, releases them
//! when it failed or was cancelled. Driving the engine (Redis) from committed events
//! means a crash anywhere redelivers the event; it keeps no processed-event row,
//! because the engine settles each reservation exactly once, so a repeat is harmless.

use goodsmall_platform::events::{
    contracts::{kinds, OrderEvent, ORDERS_TOPIC},
    PerEvent, Received,
};
use goodsmall_sale::StockEngine;

pub struct OrderStock {
    pub engine: StockEngine,
}

goodsmall_platform::consumer!(OrderStock in "order-stock" reads OrderEvent;
    from [ORDERS_TOPIC] of [kinds::ORDER_COMPLETED, kinds::ORDER_FAILED, kinds::ORDER_CANCELED]);

impl PerEvent for OrderStock {
    async fn handle(&self, event: Received<OrderEvent>) -> anyhow::Result<()> {
        let release = event.kind != kinds::ORDER_COMPLETED;
        let order = event.payload;
        match (order.sale_id, release) {
            (Some(sale_id), false) => {
                self.engine.confirm(sale_id, &order.order_id).await?;
            }
            (Some(sale_id), true) => {
                self.engine.release(sale_id, &order.order_id).await?;
            }
            (None, false) => {}
            (None, true) => {
                self.engine.release_products(&order.order_id).await?;
            }
        }
        Ok(())
    }
}
