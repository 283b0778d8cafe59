//! The product table: plain SQL through the platform's `Database`, one named query per
//! method so `/metrics` shows what the catalogue costs.

use chrono::{DateTime, Utc};
use goodsmall_platform::{
    clock::{now_millis, to_datetime, TimeOutOfRange},
    db::{affected, Database},
    error::Unreachable,
};
use serde::{Deserialize, Serialize};
use sqlx::{any::AnyRow, Row};
use utoipa::ToSchema;

use crate::domain::{
    Cursor, Description, PageSize, Price, ProductName, ProductStatus, StockQuantity, UnknownProductStatus,
};

/// What the catalogue can fail with: a database that does not answer (a 503), or a
/// row this release cannot read (a 500, never read as something else).
#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    #[error("catalogue: the database failed")]
    Database(#[from] sqlx::Error),
    #[error("product {id}: its status")]
    UnknownStatus {
        id: i64,
        #[source]
        source: UnknownProductStatus,
    },
    #[error("product {id}: a stored time")]
    CorruptTime {
        id: i64,
        #[source]
        source: TimeOutOfRange,
    },
    #[error("new product {0} vanished")]
    Vanished(i64),
}

impl Unreachable for CatalogueError {
    fn unreachable(&self) -> Option<&'static str> {
        match self {
            CatalogueError::Database(e) => e.unreachable(),
            CatalogueError::UnknownStatus { .. } | CatalogueError::CorruptTime { .. } | CatalogueError::Vanished(_) => {
                None
            }
        }
    }
}

/// A product as the API shows it (and as the detail cache stores it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Product {
    pub id: i64,
    pub merchant_id: i64,
    pub name: String,
    pub description: String,
    pub price: Price,
    pub quantity: i64,
    pub status: ProductStatus,
    /// When the product goes on sale (RFC 3339), if scheduled.
    pub opens_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub struct NewProduct {
    pub merchant_id: i64,
    pub name: ProductName,
    pub description: Description,
    pub price: Price,
    pub quantity: StockQuantity,
    pub status: ProductStatus,
    pub opens_at: Option<DateTime<Utc>>,
}

/// Only the given fields change.
#[derive(Default)]
pub struct ProductChanges {
    pub name: Option<ProductName>,
    pub description: Option<Description>,
    pub price: Option<Price>,
    pub quantity: Option<StockQuantity>,
    pub status: Option<ProductStatus>,
    pub opens_at: Option<DateTime<Utc>>,
}

pub struct Page {
    pub items: Vec<Product>,
    pub next: Option<Cursor>,
}

#[derive(Clone)]
pub struct Catalogue {
    db: Database,
}

const COLUMNS: &str =
    "id, merchant_id, name, description, price_cents, quantity, status, opens_at, created_at, updated_at";

impl Catalogue {
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    pub fn database(&self) -> &Database {
        &self.db
    }

    pub async fn create(&self, p: NewProduct) -> Result<Product, CatalogueError> {
        let now = now_millis();
        let _q = self.db.observe("product.insert");
        let sql = self.db.insert_sql(
            "INSERT INTO products \
             (merchant_id, name, description, price_cents, quantity, status, opens_at, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        );
        let query = sqlx::query(&sql)
            .bind(p.merchant_id)
            .bind(p.name.as_str())
            .bind(p.description.as_str())
            .bind(p.price.cents())
            .bind(p.quantity.get())
            .bind(p.status.as_str())
            .bind(p.opens_at.map(|t| t.timestamp_millis()))
            .bind(now)
            .bind(now);
        let id = self.db.insert_id(query).await?;
        drop(_q);
        self.find_by_id(id).await?.ok_or(CatalogueError::Vanished(id))
    }

    pub async fn find_by_id(&self, id: i64) -> Result<Option<Product>, CatalogueError> {
        let _q = self.db.observe("product.find_by_id");
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM products WHERE id = ?"))
            .bind(id)
            .fetch_optional(self.db.pool())
            .await?;
        row.map(|r| product_from_row(&r)).transpose()
    }

    /// Applies the changes; `false` when there is no such product.
    pub async fn update(&self, id: i64, c: ProductChanges) -> Result<bool, CatalogueError> {
        let _q = self.db.observe("product.update");
        let done = sqlx::query(
            "UPDATE products SET name = COALESCE(?, name), description = COALESCE(?, description), \
             price_cents = COALESCE(?, price_cents), quantity = COALESCE(?, quantity), status = COALESCE(?, status), \
             opens_at = COALESCE(?, opens_at), updated_at = ? WHERE id = ?",
        )
        .bind(c.name.as_ref().map(|v| v.as_str().to_owned()))
        .bind(c.description.as_ref().map(|v| v.as_str().to_owned()))
        .bind(c.price.map(Price::cents))
        .bind(c.quantity.map(StockQuantity::get))
        .bind(c.status.map(|s| s.as_str().to_owned()))
        .bind(c.opens_at.map(|t| t.timestamp_millis()))
        .bind(now_millis())
        .bind(id)
        .execute(self.db.pool())
        .await?;
        Ok(affected(&done) == 1)
    }

    /// Newest first, keyset-paged by id: stable while products are added, and each
    /// page costs one index range scan however deep the client is.
    pub async fn list(
        &self,
        name_contains: Option<&str>,
        size: PageSize,
        after: Option<Cursor>,
    ) -> Result<Page, CatalogueError> {
        let mut sql = format!("SELECT {COLUMNS} FROM products WHERE 1 = 1");
        if after.is_some() {
            sql.push_str(" AND id < ?");
        }
        if name_contains.is_some() {
            sql.push_str(" AND LOWER(name) LIKE ? ESCAPE '!'");
        }
        sql.push_str(" ORDER BY id DESC LIMIT ?");
        let mut query = sqlx::query(&sql);
        if let Some(cursor) = after {
            query = query.bind(cursor.after_id);
        }
        if let Some(q) = name_contains {
            query = query.bind(format!("%{}%", escape_like(&q.to_lowercase())));
        }
        // One extra row tells whether another page exists.
        let query = query.bind(i64::from(size.get()) + 1);
        let _q = self.db.observe("product.list");
        let rows = query.fetch_all(self.db.pool()).await?;
        let mut items = rows.iter().map(product_from_row).collect::<Result<Vec<_>, _>>()?;
        let next = if items.len() > size.get() as usize {
            items.truncate(size.get() as usize);
            items.last().map(|p| Cursor { after_id: p.id })
        } else {
            None
        };
        Ok(Page { items, next })
    }

    pub async fn count(&self) -> Result<i64, CatalogueError> {
        let _q = self.db.observe("product.count");
        Ok(sqlx::query("SELECT COUNT(*) FROM products").fetch_one(self.db.pool()).await?.try_get::<i64, _>(0)?)
    }
}

fn escape_like(s: &str) -> String {
    s.replace('!', "!!").replace('%', "!%").replace('_', "!_")
}

fn product_from_row(row: &AnyRow) -> Result<Product, CatalogueError> {
    let id = row.try_get("id")?;
    let time = |millis| to_datetime(millis).map_err(|source| CatalogueError::CorruptTime { id, source });
    Ok(Product {
        id,
        merchant_id: row.try_get("merchant_id")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        price: Price::from_cents(row.try_get("price_cents")?),
        quantity: row.try_get("quantity")?,
        status: ProductStatus::from_db(&row.try_get::<String, _>("status")?)
            .map_err(|source| CatalogueError::UnknownStatus { id, source })?,
        opens_at: row.try_get::<Option<i64>, _>("opens_at")?.map(time).transpose()?,
        created_at: time(row.try_get("created_at")?)?,
        updated_at: time(row.try_get("updated_at")?)?,
    })
}
