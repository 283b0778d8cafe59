//! `product-stock` reads the order events (goodsmall.orders.v1) and keeps the product
//! rows' stock in step with the saga: paid units come off the product's quantity
//! (`order.completed`), refunded or returned ones go back (`order.canceled` of a paid
//! order, `order.returned`), and the cached product detail is refreshed. Idempotent:
//! the processed-event row commits in the quantity change's transaction, so a
//! redelivered event changes nothing.

use goodsmall_platform::events::{
    contracts::{kinds, OrderEvent, ORDERS_TOPIC},
    Consumer, PerEvent, Received,
};

use crate::{catalogue::Catalogue, detail_cache::DetailCache};

/// Subscribed with `bus.consume`.
pub struct ProductStock {
    pub catalogue: Catalogue,
    pub details: DetailCache,
}

goodsmall_platform::consumer!(ProductStock in "product-stock" reads OrderEvent;
    from [ORDERS_TOPIC] of [kinds::ORDER_COMPLETED, kinds::ORDER_RETURNED, kinds::ORDER_CANCELED]);

impl PerEvent for ProductStock {
    async fn handle(&self, event: Received<OrderEvent>) -> anyhow::Result<()> {
        let sign = match event.kind {
            kinds::ORDER_COMPLETED => -1,
            kinds::ORDER_CANCELED if event.payload.was_paid => 1,
            kinds::ORDER_RETURNED => 1,
            _ => return Ok(()), // an unpaid order's cancellation: no units were taken off
        };
        let mut tx = self.catalogue.database().pool().begin().await?;
        if !Self::first_time(&mut tx, &event).await? {
            return Ok(());
        }
        let order = event.payload;
        for line in &order.lines {
            // Never below zero: a merchant may have lowered the quantity meanwhile.
            sqlx::query(
                "UPDATE products SET quantity = CASE WHEN quantity + ? < 0 THEN 0 ELSE quantity + ? END, \
                updated_at = ? WHERE id = ?",
            )
            .bind(sign * line.quantity)
            .bind(sign * line.quantity)
            .bind(goodsmall_platform::clock::now_millis())
            .bind(line.product_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        // Shoppers see the new quantity now rather than when the cached detail expires.
        for line in &order.lines {
            if let Some(product) = self.catalogue.find_by_id(line.product_id).await? {
                self.details.store(&product).await;
            }
        }
        Ok(())
    }
}
