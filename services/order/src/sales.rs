//! Sales: the durable record in the order database, mirrored into the stock engine
//! (Redis or in-process) where purchases are decided.

use chrono::{DateTime, Utc};
use goodsmall_platform::{
    clock::{now_millis, to_datetime},
    db::Database,
    money::Price,
};
use goodsmall_sale::{SaleDefinition, StockEngine};
use serde::Serialize;
use sqlx::{any::AnyRow, Row};
use utoipa::ToSchema;

use crate::domain::OrderStatus;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Sale {
    pub id: i64,
    pub product_id: i64,
    pub merchant_id: i64,
    pub stock: i64,
    pub price: Price,
    pub opens_at: DateTime<Utc>,
    pub closes_at: DateTime<Utc>,
    pub per_user_limit: i64,
    pub closed_at: Option<DateTime<Utc>>,
}

impl Sale {
    pub fn definition(&self) -> SaleDefinition {
        SaleDefinition {
            sale_id: self.id,
            product_id: self.product_id,
            stock: self.stock,
            price_cents: self.price.cents(),
            opens_at_ms: self.opens_at.timestamp_millis(),
            closes_at_ms: self.closes_at.timestamp_millis(),
            per_user_limit: self.per_user_limit,
        }
    }
}

pub struct NewSale {
    pub product_id: i64,
    pub merchant_id: i64,
    pub stock: i64,
    pub price: Price,
    pub opens_at: DateTime<Utc>,
    pub closes_at: DateTime<Utc>,
    pub per_user_limit: i64,
}

#[derive(Clone)]
pub struct Sales {
    db: Database,
    engine: StockEngine,
}

const COLUMNS: &str = "id, product_id, merchant_id, stock, price_cents, opens_at, closes_at, per_user_limit, closed_at";

impl Sales {
    pub fn new(db: Database, engine: StockEngine) -> Self {
        Self { db, engine }
    }

    /// Records the sale, then loads it into the stock engine (idempotent, so a crash
    /// between the two is repaired by `restore_open_sales` at the next start).
    pub async fn create(&self, s: NewSale) -> anyhow::Result<Sale> {
        let sql = self.db.insert_sql(
            "INSERT INTO sales (product_id, merchant_id, stock, price_cents, opens_at, closes_at, per_user_limit, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        );
        let query = sqlx::query(&sql)
            .bind(s.product_id)
            .bind(s.merchant_id)
            .bind(s.stock)
            .bind(s.price.cents())
            .bind(s.opens_at.timestamp_millis())
            .bind(s.closes_at.timestamp_millis())
            .bind(s.per_user_limit)
            .bind(now_millis());
        let id = {
            let _q = self.db.observe("sale.insert");
            self.db.insert_id(query).await?
        };
        let sale = self.find(id).await?.ok_or_else(|| anyhow::anyhow!("new sale {id} vanished"))?;
        self.engine.load_sale(&sale.definition()).await?;
        Ok(sale)
    }

    pub async fn find(&self, id: i64) -> anyhow::Result<Option<Sale>> {
        let _q = self.db.observe("sale.find");
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM sales WHERE id = ?")).bind(id).fetch_optional(self.db.pool()).await?;
        row.map(|r| sale_from_row(&r)).transpose()
    }

    /// Ends the sale now: recorded, and the engine refuses further purchases.
    pub async fn close(&self, id: i64) -> anyhow::Result<()> {
        {
            let _q = self.db.observe("sale.close");
            sqlx::query("UPDATE sales SET closed_at = COALESCE(closed_at, ?) WHERE id = ?").bind(now_millis()).bind(id).execute(self.db.pool()).await?;
        }
        self.engine.close_sale(id).await?;
        Ok(())
    }

    /// Sales that are open or ended within `window` (where stray reservations may be).
    pub async fn recent(&self, window: std::time::Duration) -> anyhow::Result<Vec<Sale>> {
        let _q = self.db.observe("sale.recent");
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM sales WHERE closes_at > ?"))
            .bind(now_millis() - window.as_millis() as i64)
            .fetch_all(self.db.pool())
            .await?;
        rows.iter().map(sale_from_row).collect()
    }

    /// Puts every sale that has not ended back into the engine when the engine lacks
    /// it (a fresh in-process engine after a restart, or a Redis that lost its keys):
    /// the sale is loaded, then every order that still holds units is re-reserved
    /// (and re-confirmed when paid), so remaining stock is what the orders leave and
    /// nothing can be sold twice.
    pub async fn restore_open_sales(&self) -> anyhow::Result<usize> {
        let rows = {
            let _q = self.db.observe("sale.open");
            sqlx::query(&format!("SELECT {COLUMNS} FROM sales WHERE closed_at IS NULL AND closes_at > ?"))
                .bind(now_millis())
                .fetch_all(self.db.pool())
                .await?
        };
        let mut restored = 0;
        for row in &rows {
            let sale = sale_from_row(row)?;
            if self.engine.counters(sale.id).await?.is_some() {
                continue;
            }
            self.engine.load_sale(&sale.definition()).await?;
            for (order_id, user_id, quantity, status) in self.holding_orders(sale.id).await? {
                let key = format!("restore:{order_id}");
                self.engine.reserve(sale.id, user_id, &key, quantity, &order_id, sale.opens_at.timestamp_millis()).await?;
                if status != OrderStatus::Processing {
                    self.engine.confirm(sale.id, &order_id).await?;
                }
            }
            restored += 1;
            tracing::info!(sale_id = sale.id, "sale restored into the stock engine from its orders");
        }
        Ok(restored)
    }

    /// Orders of the sale that hold units: awaiting payment, or paid (and not refunded).
    async fn holding_orders(&self, sale_id: i64) -> anyhow::Result<Vec<(String, i64, i64, OrderStatus)>> {
        let _q = self.db.observe("sale.holding_orders");
        let rows = sqlx::query(
            "SELECT o.id, o.user_id, o.status, l.quantity FROM orders o JOIN order_lines l ON l.order_id = o.id \
             WHERE o.sale_id = ? AND o.status NOT IN ('FAILED', 'CANCELED') ORDER BY o.id",
        )
        .bind(sale_id)
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let status = OrderStatus::parse(&r.try_get::<String, _>("status")?).unwrap_or(OrderStatus::Processing);
                Ok((r.try_get("id")?, r.try_get("user_id")?, r.try_get("quantity")?, status))
            })
            .collect()
    }
}

fn sale_from_row(row: &AnyRow) -> anyhow::Result<Sale> {
    Ok(Sale {
        id: row.try_get("id")?,
        product_id: row.try_get("product_id")?,
        merchant_id: row.try_get("merchant_id")?,
        stock: row.try_get("stock")?,
        price: Price::from_cents(row.try_get("price_cents")?),
        opens_at: to_datetime(row.try_get("opens_at")?),
        closes_at: to_datetime(row.try_get("closes_at")?),
        per_user_limit: row.try_get("per_user_limit")?,
        closed_at: row.try_get::<Option<i64>, _>("closed_at")?.map(to_datetime),
    })
}
