//! Cart checkout: every line of the cart reserved in the stock engine at once (all or
//! none), then, in one transaction, the checkout recorded under the shopper's
//! Idempotency-Key, the cart emptied and `checkout.placed` put in the outbox. The
//! order service turns that event into the order, so the shopper gets 202 as soon as
//! the checkout is durable.

use goodsmall_platform::{
    clock::now_millis,
    db::{is_unique_violation, Database},
    error::Unreachable,
    events::{
        self,
        contracts::{kinds, OrderEvent, OrderLine, CHECKOUTS_TOPIC},
        Event, RelayHandle,
    },
    extract::IdempotencyKey,
};
use goodsmall_sale::{EngineError, StockEngine};
use sqlx::Row;

use crate::{
    cart::{CartError, Carts},
    catalogue::{Catalogue, CatalogueError},
    domain::ProductStatus,
    stock::LiveStock,
};

/// What a checkout can fail with, each part by its own error.
#[derive(Debug, thiserror::Error)]
pub enum CheckoutError {
    #[error("checkout: reading the cart failed")]
    Cart(#[from] CartError),
    #[error("checkout: reading a product failed")]
    Catalogue(#[from] CatalogueError),
    #[error("checkout: the stock engine failed")]
    Engine(#[from] EngineError),
    #[error("checkout: the database failed")]
    Database(#[from] sqlx::Error),
    #[error("checkout: the checkout that won the race for this key vanished")]
    Vanished,
}

impl Unreachable for CheckoutError {
    fn unreachable(&self) -> Option<&'static str> {
        match self {
            CheckoutError::Cart(e) => e.unreachable(),
            CheckoutError::Catalogue(e) => e.unreachable(),
            CheckoutError::Engine(e) => e.unreachable(),
            CheckoutError::Database(e) => e.unreachable(),
            CheckoutError::Vanished => None,
        }
    }
}

pub enum CheckoutOutcome {
    /// Reserved and recorded (or found under the same key).
    Placed {
        order_id: String,
        repeated: bool,
    },
    EmptyCart,
    /// A line's product is not on sale (pre-sale or sold out by its merchant).
    NotOnSale {
        product_id: i64,
    },
    /// Fewer units left than the cart asks for.
    Short {
        product_id: i64,
    },
}

#[derive(Clone)]
pub struct Checkouts {
    db: Database,
    carts: Carts,
    catalogue: Catalogue,
    stock: LiveStock,
    engine: StockEngine,
    relay: RelayHandle,
}

impl Checkouts {
    pub fn new(
        db: Database,
        carts: Carts,
        catalogue: Catalogue,
        stock: LiveStock,
        engine: StockEngine,
        relay: RelayHandle,
    ) -> Self {
        Self { db, carts, catalogue, stock, engine, relay }
    }

    pub async fn place(&self, user_id: i64, key: &IdempotencyKey) -> Result<CheckoutOutcome, CheckoutError> {
        if let Some(order_id) = self.find(user_id, key).await? {
            return Ok(CheckoutOutcome::Placed { order_id, repeated: true });
        }
        let cart = self.carts.view(user_id).await?;
        if cart.items.is_empty() {
            return Ok(CheckoutOutcome::EmptyCart);
        }
        let mut lines = Vec::with_capacity(cart.items.len());
        for item in &cart.items {
            if item.status != ProductStatus::OnSale {
                return Ok(CheckoutOutcome::NotOnSale { product_id: item.product_id });
            }
            // Live stock is seeded from the product row the first time it is needed.
            if let Some(product) = self.catalogue.find_by_id(item.product_id).await? {
                self.stock.available(&product).await?;
            }
            lines.push(OrderLine {
                product_id: item.product_id,
                quantity: item.quantity,
                unit_price_cents: item.unit_price.cents(),
            });
        }
        let order_id = uuid::Uuid::now_v7().to_string();
        let wanted: Vec<(i64, i64)> = lines.iter().map(|l| (l.product_id, l.quantity)).collect();
        if let Err(product_id) = self.engine.reserve_products(&order_id, &wanted).await? {
            return Ok(CheckoutOutcome::Short { product_id });
        }
        match self.record(user_id, key, &order_id, lines).await {
            Ok(true) => {
                self.relay.wake();
                Ok(CheckoutOutcome::Placed { order_id, repeated: false })
            }
            // The same key won a race meanwhile: give our units back, answer theirs.
            Ok(false) => {
                self.engine.release_products(&order_id).await?;
                let first = self.find(user_id, key).await?.ok_or(CheckoutError::Vanished)?;
                Ok(CheckoutOutcome::Placed { order_id: first, repeated: true })
            }
            Err(e) => {
                self.engine.release_products(&order_id).await?;
                Err(e.into())
            }
        }
    }

    async fn find(&self, user_id: i64, key: &IdempotencyKey) -> Result<Option<String>, sqlx::Error> {
        let _q = self.db.observe("checkout.find");
        let row = sqlx::query("SELECT order_id FROM checkouts WHERE user_id = ? AND idempotency_key = ?")
            .bind(user_id)
            .bind(key.as_str())
            .fetch_optional(self.db.pool())
            .await?;
        row.map(|r| r.try_get("order_id")).transpose()
    }

    /// `false` when the key was already used (nothing written).
    async fn record(
        &self,
        user_id: i64,
        key: &IdempotencyKey,
        order_id: &str,
        lines: Vec<OrderLine>,
    ) -> Result<bool, sqlx::Error> {
        let _q = self.db.observe("checkout.record");
        let mut tx = self.db.pool().begin().await?;
        let inserted =
            sqlx::query("INSERT INTO checkouts (user_id, idempotency_key, order_id, created_at) VALUES (?, ?, ?, ?)")
                .bind(user_id)
                .bind(key.as_str())
                .bind(order_id)
                .bind(now_millis())
                .execute(&mut *tx)
                .await;
        match inserted {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => return Ok(false),
            Err(e) => return Err(e),
        }
        sqlx::query("DELETE FROM cart_items WHERE user_id = ?").bind(user_id).execute(&mut *tx).await?;
        let total_cents = lines.iter().map(|l| l.quantity * l.unit_price_cents).sum();
        let placed =
            OrderEvent { order_id: order_id.to_owned(), user_id, sale_id: None, total_cents, lines, was_paid: false };
        events::append(&mut tx, Event::new(CHECKOUTS_TOPIC, kinds::CHECKOUT_PLACED, order_id, placed)).await?;
        tx.commit().await?;
        Ok(true)
    }
}
