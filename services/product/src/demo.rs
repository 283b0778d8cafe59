//! Demo goods for the one-process default, so a newcomer has something to browse.

use chrono::{Duration, Utc};
use goodsmall_sale::EngineError;

use crate::{
    catalogue::{CatalogueError, NewProduct},
    domain::{DecimalInput, Description, Price, ProductName, ProductStatus, StockQuantity},
    state::ProductState,
};

/// Oldest first; the catalogue lists newest first, so an on-sale item leads the list.
const DEMO_GOODS: &[(&str, &str, &str, i64, ProductStatus)] = &[
    ("Fan Meeting Ticket", "Standing, section A.", "150.00", 0, ProductStatus::SoldOut),
    ("Limited Lightstick v3", "Official lightstick, numbered edition.", "59.00", 100, ProductStatus::PreSale),
    ("Vinyl Box Set", "Three LPs with a booklet.", "120.00", 20, ProductStatus::OnSale),
    ("Signed Photocard Set", "Five cards, hand-signed.", "25.50", 300, ProductStatus::OnSale),
    ("Tour Hoodie 2026", "Heavyweight cotton, one run only.", "89.00", 50, ProductStatus::OnSale),
];

/// Why the demo goods could not be added.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("demo product {name:?}: {message}")]
    Invalid { name: &'static str, message: String },
    #[error("demo goods: the catalogue failed")]
    Catalogue(#[from] CatalogueError),
    #[error("demo goods: the stock engine failed")]
    Engine(#[from] EngineError),
}

/// The product the demo drop sells.
pub const DROP_PRODUCT: &str = "Limited Lightstick v3";

/// Seeds the goods into an empty catalogue; returns the id of [`DROP_PRODUCT`] when it
/// did (nothing when the catalogue already had products).
pub async fn seed(state: &ProductState, merchant_id: i64) -> Result<Option<i64>, DemoError> {
    if state.catalogue.count().await? > 0 {
        return Ok(None);
    }
    let mut drop_product = None;
    for &(name, description, price, quantity, status) in DEMO_GOODS {
        let invalid = |message| DemoError::Invalid { name, message };
        let opens_at = (status == ProductStatus::PreSale).then(|| Utc::now() + Duration::hours(1));
        let product = state
            .catalogue
            .create(NewProduct {
                merchant_id,
                name: ProductName::parse(name).map_err(invalid)?,
                description: Description::parse(description).map_err(invalid)?,
                price: Price::parse(&DecimalInput::Text(price.into())).map_err(invalid)?,
                quantity: StockQuantity::parse(quantity).map_err(invalid)?,
                status,
                opens_at,
            })
            .await?;
        state.stock.reset(&product).await?;
        if name == DROP_PRODUCT {
            drop_product = Some(product.id);
        }
    }
    tracing::info!(products = DEMO_GOODS.len(), "demo goods added");
    Ok(drop_product)
}
