//! Keeps the product rows' stock in step with the saga: consumer `product-stock` of
//! the order events takes paid units off the product's quantity and puts refunded or
//! returned ones back, once per event (a processed-event row in the same transaction).

use std::sync::Arc;

use goodsmall_platform::{
    events::{self, contracts::{kinds, OrderEvent, ORDERS_TOPIC}, Bus, Event, EventHandler},
};

pub const CONSUMER: &str = "product-stock";

use crate::{catalogue::Catalogue, detail_cache::DetailCache};

pub fn subscribe(bus: &Bus, catalogue: Catalogue, details: DetailCache) {
    let handler: EventHandler = Arc::new(move |event| {
        let (catalogue, details) = (catalogue.clone(), details.clone());
        Box::pin(async move { on_order(&catalogue, &details, event).await })
    });
    bus.subscribe(CONSUMER, &[ORDERS_TOPIC], handler);
}

async fn on_order(catalogue: &Catalogue, details: &DetailCache, event: Event) -> anyhow::Result<()> {
    let db = catalogue.database();
    let order: OrderEvent = match event.kind.as_str() {
        kinds::ORDER_COMPLETED | kinds::ORDER_RETURNED | kinds::ORDER_CANCELED => match event.decode() {
            Ok(order) => order,
            Err(e) => {
                tracing::error!(error = %e, "skipping an undecodable order event");
                return Ok(());
            }
        },
        _ => return Ok(()),
    };
    let sign = match event.kind.as_str() {
        kinds::ORDER_COMPLETED => -1,
        kinds::ORDER_CANCELED if order.was_paid => 1,
        kinds::ORDER_RETURNED => 1,
        _ => return Ok(()),
    };
    let mut tx = db.pool().begin().await?;
    if !events::first_time(&mut tx, CONSUMER, &event.id).await? {
        return Ok(());
    }
    for line in &order.lines {
        // Never below zero: a merchant may have lowered the quantity meanwhile.
        sqlx::query("UPDATE products SET quantity = CASE WHEN quantity + ? < 0 THEN 0 ELSE quantity + ? END, updated_at = ? WHERE id = ?")
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
        if let Some(product) = catalogue.find_by_id(line.product_id).await? {
            details.store(&product).await;
        }
    }
    Ok(())
}
