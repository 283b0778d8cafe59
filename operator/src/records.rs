//! The sale's durable record (the order database) and its live state (the stock
//! engine), as the reconciler sees them; and who owns a product.

use async_trait::async_trait;
use goodsmall_order::sales::{NewSale, Sale, Sales};
use goodsmall_sale::StockEngine;

use crate::{phase::Stock, validation::Terms};

/// Who sells a product: `None` when there is no such product.
#[async_trait]
pub trait Catalogue: Send + Sync {
    async fn owner_of(&self, product_id: i64) -> anyhow::Result<Option<i64>>;
}

/// The product service's public API (`GET /api/products/{id}`).
pub struct ProductApi {
    client: reqwest::Client,
    base_url: String,
}

impl ProductApi {
    pub fn new(base_url: &str) -> Self {
        let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(5)).build().expect("an HTTP client");
        Self { client, base_url: base_url.trim_end_matches('/').to_owned() }
    }
}

#[async_trait]
impl Catalogue for ProductApi {
    async fn owner_of(&self, product_id: i64) -> anyhow::Result<Option<i64>> {
        let response = self.client.get(format!("{}/api/products/{product_id}", self.base_url)).send().await?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let product: serde_json::Value = response.error_for_status()?.json().await?;
        Ok(product["merchant_id"].as_i64())
    }
}

#[derive(Clone)]
pub struct SaleRecords {
    pub sales: Sales,
    pub engine: StockEngine,
}

impl SaleRecords {
    pub fn new(sales: Sales, engine: StockEngine) -> Self {
        Self { sales, engine }
    }

    pub async fn find(&self, manifest: &str) -> anyhow::Result<Option<Sale>> {
        self.sales.find_flash_sale(manifest).await
    }

    pub async fn apply(&self, manifest: &str, merchant_id: i64, t: &Terms) -> anyhow::Result<Sale> {
        let new = NewSale {
            product_id: t.product_id,
            merchant_id,
            stock: t.stock,
            price: t.price,
            opens_at: t.opens_at,
            closes_at: t.closes_at,
            per_user_limit: t.per_user_limit,
        };
        self.sales.apply_flash_sale(manifest, new).await
    }

    pub async fn stock(&self, sale_id: i64) -> anyhow::Result<Option<Stock>> {
        let counters = self.engine.counters(sale_id).await?;
        Ok(counters.map(|c| Stock { remaining: c.remaining, reserved: c.reserved, sold: c.sold, closed: c.closed }))
    }
}
