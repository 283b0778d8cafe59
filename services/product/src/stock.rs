//! Live stock: units of a product available now, held by the stock engine (Redis key
//! `product:stock:v1:{id}`, or in-process in the one-process default) where cart
//! checkouts take them atomically. The product row's quantity is the merchant's figure:
//! it seeds the live stock when there is none and replaces it when the merchant edits.

use goodsmall_sale::{EngineError, StockEngine};

use crate::catalogue::Product;

#[derive(Clone)]
pub struct LiveStock {
    engine: StockEngine,
}

impl LiveStock {
    pub fn new(engine: StockEngine) -> Self {
        Self { engine }
    }

    /// The merchant set the quantity: it becomes the available stock.
    pub async fn reset(&self, product: &Product) -> Result<(), EngineError> {
        self.engine.set_product_stock(product.id, product.quantity).await
    }

    /// Available units, seeding them from the product when there are none yet (never
    /// overwriting a checkout's decrement).
    pub async fn available(&self, product: &Product) -> Result<i64, EngineError> {
        if let Some(n) = self.engine.product_stock(product.id).await? {
            return Ok(n.max(0));
        }
        self.engine.seed_product_stock(product.id, product.quantity).await?;
        Ok(self.engine.product_stock(product.id).await?.unwrap_or(product.quantity).max(0))
    }
}
