//! A shopper's cart. Every query is keyed by the caller's user id, which comes only
//! from the verified access token, so no request can reach another shopper's lines.

use goodsmall_platform::{
    clock::now_millis,
    db::{affected, is_unique_violation, Database},
    error::Unreachable,
};
use serde::Serialize;
use sqlx::Row;
use utoipa::ToSchema;

use crate::domain::{CartQuantity, Price, ProductStatus, UnknownProductStatus};

#[derive(Debug, Serialize, ToSchema)]
pub struct CartLine {
    pub product_id: i64,
    pub name: String,
    pub unit_price: Price,
    pub quantity: i64,
    pub line_total: Price,
    pub status: ProductStatus,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CartView {
    pub items: Vec<CartLine>,
    pub total: Price,
}

/// What the cart can fail with: a full line (the shopper's to fix), a database that
/// does not answer, or a line this release cannot read.
#[derive(Debug, thiserror::Error)]
pub enum CartError {
    #[error("a cart line holds at most {} units", CartQuantity::MAX)]
    LineFull,
    #[error("cart: the database failed")]
    Database(#[from] sqlx::Error),
    #[error("cart line for product {product_id}: its product's status")]
    UnknownStatus {
        product_id: i64,
        #[source]
        source: UnknownProductStatus,
    },
    #[error("cart line for product {0} kept changing")]
    KeepsChanging(i64),
}

impl Unreachable for CartError {
    fn unreachable(&self) -> Option<&'static str> {
        match self {
            CartError::Database(e) => e.unreachable(),
            CartError::LineFull | CartError::UnknownStatus { .. } | CartError::KeepsChanging(_) => None,
        }
    }
}

#[derive(Clone)]
pub struct Carts {
    db: Database,
}

impl Carts {
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    pub async fn view(&self, user_id: i64) -> Result<CartView, CartError> {
        let _q = self.db.observe("cart.view");
        let rows = sqlx::query(
            "SELECT c.product_id, c.quantity, p.name, p.price_cents, p.status FROM cart_items c \
             JOIN products p ON p.id = c.product_id WHERE c.user_id = ? ORDER BY c.added_at, c.product_id",
        )
        .bind(user_id)
        .fetch_all(self.db.pool())
        .await?;
        let items = rows
            .iter()
            .map(|r| {
                let unit_price = Price::from_cents(r.try_get("price_cents")?);
                let quantity: i64 = r.try_get("quantity")?;
                let product_id = r.try_get("product_id")?;
                Ok(CartLine {
                    product_id,
                    name: r.try_get("name")?,
                    unit_price,
                    quantity,
                    line_total: unit_price.times(quantity),
                    status: ProductStatus::from_db(&r.try_get::<String, _>("status")?)
                        .map_err(|source| CartError::UnknownStatus { product_id, source })?,
                })
            })
            .collect::<Result<Vec<_>, CartError>>()?;
        let total = items.iter().map(|l| l.line_total).sum();
        Ok(CartView { items, total })
    }

    /// Adds units, merging with an existing line (which must stay within the limit).
    pub async fn add(&self, user_id: i64, product_id: i64, quantity: CartQuantity) -> Result<(), CartError> {
        for _ in 0..2 {
            if self.add_to_line(user_id, product_id, quantity).await? {
                return Ok(());
            }
            if self.line_exists(user_id, product_id).await? {
                return Err(CartError::LineFull);
            }
            let _q = self.db.observe("cart.insert");
            let inserted =
                sqlx::query("INSERT INTO cart_items (user_id, product_id, quantity, added_at) VALUES (?, ?, ?, ?)")
                    .bind(user_id)
                    .bind(product_id)
                    .bind(quantity.get())
                    .bind(now_millis())
                    .execute(self.db.pool())
                    .await;
            match inserted {
                Ok(_) => return Ok(()),
                // A concurrent add created the line first: merge into it.
                Err(e) if is_unique_violation(&e) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(CartError::KeepsChanging(product_id))
    }

    async fn add_to_line(&self, user_id: i64, product_id: i64, quantity: CartQuantity) -> Result<bool, CartError> {
        let _q = self.db.observe("cart.merge");
        let done = sqlx::query(
            "UPDATE cart_items SET quantity = quantity + ? WHERE user_id = ? AND product_id = ? AND quantity + ? <= ?",
        )
        .bind(quantity.get())
        .bind(user_id)
        .bind(product_id)
        .bind(quantity.get())
        .bind(CartQuantity::MAX)
        .execute(self.db.pool())
        .await?;
        Ok(affected(&done) == 1)
    }

    async fn line_exists(&self, user_id: i64, product_id: i64) -> Result<bool, CartError> {
        let _q = self.db.observe("cart.line_exists");
        let row = sqlx::query("SELECT 1 FROM cart_items WHERE user_id = ? AND product_id = ?")
            .bind(user_id)
            .bind(product_id)
            .fetch_optional(self.db.pool())
            .await?;
        Ok(row.is_some())
    }

    /// `false` when the caller has no line for this product.
    pub async fn set_quantity(&self, user_id: i64, product_id: i64, quantity: CartQuantity) -> Result<bool, CartError> {
        let _q = self.db.observe("cart.set_quantity");
        let done = sqlx::query("UPDATE cart_items SET quantity = ? WHERE user_id = ? AND product_id = ?")
            .bind(quantity.get())
            .bind(user_id)
            .bind(product_id)
            .execute(self.db.pool())
            .await?;
        // MySQL reports 0 rows changed when the value is the same; look again.
        Ok(affected(&done) == 1 || self.line_exists(user_id, product_id).await?)
    }

    /// `false` when the caller has no line for this product.
    pub async fn remove(&self, user_id: i64, product_id: i64) -> Result<bool, CartError> {
        let _q = self.db.observe("cart.remove");
        let done = sqlx::query("DELETE FROM cart_items WHERE user_id = ? AND product_id = ?")
            .bind(user_id)
            .bind(product_id)
            .execute(self.db.pool())
            .await?;
        Ok(affected(&done) == 1)
    }
}
