//! Live stock: units available now, kept in the key-value store under
//! `product:stock:v1:{id}` where purchases will decrement it. The product row's
//! quantity is the merchant's figure and seeds the key when it is absent.

use std::time::Duration;

use goodsmall_platform::kv::{Kv, KvResult};

use crate::catalogue::Product;

/// Stock keys outlive any sale; they are refreshed on every merchant write.
const STOCK_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

pub fn stock_key(id: i64) -> String {
    format!("product:stock:v1:{id}")
}

#[derive(Clone)]
pub struct LiveStock {
    kv: Kv,
}

impl LiveStock {
    pub fn new(kv: Kv) -> Self {
        Self { kv }
    }

    /// The merchant set the quantity: it becomes the available stock.
    pub async fn reset(&self, product: &Product) -> KvResult<()> {
        self.kv.set(&stock_key(product.id), &product.quantity.to_string(), STOCK_TTL).await
    }

    /// Available units, seeding the key from the product when it is missing.
    pub async fn available(&self, product: &Product) -> KvResult<i64> {
        if let Some(value) = self.kv.get(&stock_key(product.id)).await? {
            if let Ok(n) = value.parse::<i64>() {
                return Ok(n.max(0));
            }
        }
        self.kv.set_nx(&stock_key(product.id), &product.quantity.to_string(), STOCK_TTL).await?;
        Ok(self.kv.get(&stock_key(product.id)).await?.and_then(|v| v.parse().ok()).unwrap_or(product.quantity))
    }
}
