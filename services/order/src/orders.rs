//! The orders table: reads for their owner, and status changes that are conditional
//! on the current status (so replicas and retried events never apply one twice),
//! each committed together with the event that announces it.

use chrono::{DateTime, Utc};
use goodsmall_platform::{
    clock::{now_millis, to_datetime, TimeOutOfRange},
    db::{affected, insert_new, Database, ROWS_PER_STATEMENT},
    error::Unreachable,
    events::{
        self,
        contracts::{kinds, OrderEvent, OrderLine, ORDERS_TOPIC},
        Event,
    },
    money::Price,
};
use goodsmall_sale::{SaleId, UserId};
use serde::Serialize;
use sqlx::{any::AnyRow, Any, Row, Transaction};
use utoipa::ToSchema;

use crate::domain::{OrderStatus, UnknownOrderStatus};

/// What the orders table can fail with: a database that does not answer (a 503), or a
/// row this release cannot read (a 500, never read as PROCESSING or as 1970).
#[derive(Debug, thiserror::Error)]
pub enum OrderRecordError {
    #[error("orders: the database failed")]
    Database(#[from] sqlx::Error),
    #[error("order {order_id}: its status")]
    UnknownStatus {
        order_id: String,
        #[source]
        source: UnknownOrderStatus,
    },
    #[error("order {order_id}: {column}")]
    CorruptTime {
        order_id: String,
        column: &'static str,
        #[source]
        source: TimeOutOfRange,
    },
    #[error("order {0} vanished")]
    Vanished(String),
    /// Some of the order row's line columns are set and some not (`line_in_row`).
    #[error("order {order_id}: its line columns are partly set ({columns})")]
    PartialLine { order_id: String, columns: String },
}

impl Unreachable for OrderRecordError {
    fn unreachable(&self) -> Option<&'static str> {
        match self {
            OrderRecordError::Database(e) => e.unreachable(),
            OrderRecordError::UnknownStatus { .. }
            | OrderRecordError::CorruptTime { .. }
            | OrderRecordError::Vanished(_)
            | OrderRecordError::PartialLine { .. } => None,
        }
    }
}

fn stored_status(order_id: &str, stored: &str) -> Result<OrderStatus, OrderRecordError> {
    OrderStatus::parse(stored)
        .map_err(|source| OrderRecordError::UnknownStatus { order_id: order_id.to_owned(), source })
}

/// The order's line when the row holds it (the shape migration 0007 prepares: a sale's
/// one-line order without an `order_lines` row); `None` when its lines are in
/// `order_lines`.
fn line_in_row(order_id: &str, row: &AnyRow) -> Result<Option<Line>, OrderRecordError> {
    let columns = (
        row.try_get::<Option<i64>, _>("line_product_id")?,
        row.try_get::<Option<i64>, _>("line_quantity")?,
        row.try_get::<Option<i64>, _>("line_unit_price_cents")?,
    );
    match columns {
        (Some(product_id), Some(quantity), Some(cents)) => {
            Ok(Some(Line { product_id, quantity, unit_price: Price::from_cents(cents) }))
        }
        (None, None, None) => Ok(None),
        partial => {
            Err(OrderRecordError::PartialLine { order_id: order_id.to_owned(), columns: format!("{partial:?}") })
        }
    }
}

fn stored_time(order_id: &str, column: &'static str, millis: i64) -> Result<DateTime<Utc>, OrderRecordError> {
    to_datetime(millis).map_err(|source| OrderRecordError::CorruptTime {
        order_id: order_id.to_owned(),
        column,
        source,
    })
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Line {
    pub product_id: i64,
    pub quantity: i64,
    pub unit_price: Price,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Order {
    pub id: String,
    pub user_id: i64,
    pub sale_id: Option<i64>,
    pub status: OrderStatus,
    pub total: Price,
    pub lines: Vec<Line>,
    pub created_at: DateTime<Utc>,
    pub status_changed_at: DateTime<Utc>,
}

impl Order {
    pub fn event(&self, was_paid: bool) -> OrderEvent {
        OrderEvent {
            order_id: self.id.clone(),
            user_id: self.user_id,
            sale_id: self.sale_id,
            total_cents: self.total.cents(),
            lines: self
                .lines
                .iter()
                .map(|l| OrderLine {
                    product_id: l.product_id,
                    quantity: l.quantity,
                    unit_price_cents: l.unit_price.cents(),
                })
                .collect(),
            was_paid,
        }
    }
}

/// A new order as the purchase path hands it to the writer.
#[derive(Debug, Clone)]
pub struct NewOrder {
    pub id: String,
    pub user_id: i64,
    pub sale_id: Option<i64>,
    pub lines: Vec<OrderLine>,
    /// The purchase's Idempotency-Key: unique per (shopper, sale), committed with the order.
    pub idempotency_key: Option<String>,
}

impl NewOrder {
    pub fn total_cents(&self) -> i64 {
        self.lines.iter().map(|l| l.unit_price_cents * l.quantity).sum()
    }

    pub fn event(&self, was_paid: bool) -> OrderEvent {
        OrderEvent {
            order_id: self.id.clone(),
            user_id: self.user_id,
            sale_id: self.sale_id,
            total_cents: self.total_cents(),
            lines: self.lines.clone(),
            was_paid,
        }
    }
}

#[derive(Clone)]
pub struct Orders {
    db: Database,
}

impl Orders {
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    pub fn database(&self) -> &Database {
        &self.db
    }

    /// Inserts the order and its `order.created` event in the caller's transaction (as a
    /// batch of one); `false` when it already exists (a repeated purchase) or its
    /// Idempotency-Key has an order already, adding nothing.
    pub async fn insert(tx: &mut Transaction<'_, Any>, order: &NewOrder) -> Result<bool, sqlx::Error> {
        Ok(!Self::insert_batch(tx, std::slice::from_ref(order), &Default::default()).await?.is_empty())
    }

    /// Which of `ids` are orders already. Read before the writer's transaction: on
    /// SQLite a transaction that reads first cannot take the write lock if another
    /// writer got in between (it fails at once instead of waiting).
    pub async fn existing(&self, ids: &[&str]) -> Result<std::collections::HashSet<String>, sqlx::Error> {
        let mut found = std::collections::HashSet::new();
        for chunk in ids.chunks(500) {
            let marks = vec!["?"; chunk.len()].join(", ");
            let sql = format!("SELECT id FROM orders WHERE id IN ({marks})");
            let mut query = sqlx::query(&sql);
            for id in chunk {
                query = query.bind(*id);
            }
            for row in query.fetch_all(self.db.pool()).await? {
                found.insert(row.try_get("id")?);
            }
        }
        Ok(found)
    }

    /// Inserts a batch of new orders and their `order.created` events with a few
    /// multi-row statements (the group-commit writer's path), skipping repeats within
    /// the batch and the `existing` ones; returns the orders inserted. An order (or an
    /// order of the same Idempotency-Key) committed meanwhile by someone else is left
    /// out too: its statement's orders are then inserted one at a time.
    pub async fn insert_batch<'o>(
        tx: &mut Transaction<'_, Any>,
        orders: &'o [NewOrder],
        existing: &std::collections::HashSet<String>,
    ) -> Result<Vec<&'o NewOrder>, sqlx::Error> {
        Ok(Self::insert_batch_with_events(tx, orders, existing).await?.0)
    }

    /// [`insert_batch`](Self::insert_batch), also returning the `order.created` events
    /// it appended (the writer publishes them itself once they commit). They go in as few
    /// outbox rows as hold them: each is of a new order, so no earlier event of its key
    /// can be waiting.
    pub async fn insert_batch_with_events<'o>(
        tx: &mut Transaction<'_, Any>,
        orders: &'o [NewOrder],
        existing: &std::collections::HashSet<String>,
    ) -> Result<(Vec<&'o NewOrder>, events::Appended), sqlx::Error> {
        let mut seen = std::collections::HashSet::new();
        let fresh: Vec<&NewOrder> =
            orders.iter().filter(|o| !existing.contains(&o.id) && seen.insert(o.id.as_str())).collect();
        let now = now_millis();
        let status = OrderStatus::Processing.as_str();
        let mut inserted = Vec::with_capacity(fresh.len());
        let mut appended = events::Appended::default();
        for chunk in fresh.chunks(ROWS_PER_STATEMENT) {
            let insert = "INSERT INTO orders (id, user_id, sale_id, status, total_cents, created_at, \
                status_changed_at, idempotency_key) ";
            let chunk = insert_new(tx, insert, chunk, |mut row, o| {
                row.push_bind(&o.id)
                    .push_bind(o.user_id)
                    .push_bind(o.sale_id)
                    .push_bind(status)
                    .push_bind(o.total_cents())
                    .push_bind(now)
                    .push_bind(now)
                    .push_bind(o.idempotency_key.as_deref());
            })
            .await?;
            if chunk.is_empty() {
                continue;
            }
            let lines: Vec<(&str, &OrderLine)> =
                chunk.iter().flat_map(|o| o.lines.iter().map(|l| (o.id.as_str(), l))).collect();
            if !lines.is_empty() {
                let rows = vec!["(?, ?, ?, ?)"; lines.len()].join(", ");
                let sql =
                    format!("INSERT INTO order_lines (order_id, product_id, quantity, unit_price_cents) VALUES {rows}");
                let mut query = sqlx::query(&sql);
                for (id, l) in lines {
                    query = query.bind(id).bind(l.product_id).bind(l.quantity).bind(l.unit_price_cents);
                }
                query.execute(&mut **tx).await?;
            }
            let created: Vec<Event> =
                chunk.iter().map(|o| Event::new(ORDERS_TOPIC, kinds::ORDER_CREATED, &o.id, o.event(false))).collect();
            appended.extend(events::append_together(tx, created).await?);
            inserted.extend(chunk);
        }
        Ok((inserted, appended))
    }

    /// Records an order that was never committed (see `orphans`) as created and then
    /// cancelled, in one transaction; `false` when the order exists after all.
    pub async fn insert_canceled(&self, order: &NewOrder) -> Result<bool, OrderRecordError> {
        let mut tx = self.db.pool().begin().await?;
        if !Self::insert(&mut tx, order).await? {
            return Ok(false);
        }
        Self::transition_in(&mut tx, &order.id, &[OrderStatus::Processing], OrderStatus::Canceled).await?;
        events::append(&mut tx, Event::new(ORDERS_TOPIC, kinds::ORDER_CANCELED, &order.id, order.event(false))).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The order a purchase with this Idempotency-Key made in the sale, if any.
    pub async fn find_by_key(&self, user: UserId, sale: SaleId, key: &str) -> Result<Option<String>, sqlx::Error> {
        let _q = self.db.observe("order.find_by_key");
        let row = sqlx::query("SELECT id FROM orders WHERE user_id = ? AND sale_id = ? AND idempotency_key = ?")
            .bind(user.0)
            .bind(sale.0)
            .bind(key)
            .fetch_optional(self.db.pool())
            .await?;
        row.map(|r| r.try_get("id")).transpose()
    }

    /// The order's status now (for a repeated purchase's answer).
    pub async fn status(&self, id: &str) -> Result<Option<OrderStatus>, OrderRecordError> {
        let _q = self.db.observe("order.status");
        let row = sqlx::query("SELECT status FROM orders WHERE id = ?").bind(id).fetch_optional(self.db.pool()).await?;
        let Some(row) = row else { return Ok(None) };
        let status: String = row.try_get("status")?;
        Ok(Some(stored_status(id, &status)?))
    }

    pub async fn find(&self, id: &str) -> Result<Option<Order>, OrderRecordError> {
        let row = {
            let _q = self.db.observe("order.find");
            sqlx::query(
                "SELECT id, user_id, sale_id, status, total_cents, created_at, status_changed_at, line_product_id, \
                line_quantity, line_unit_price_cents FROM orders WHERE id = ?",
            )
            .bind(id)
            .fetch_optional(self.db.pool())
            .await?
        };
        let Some(row) = row else { return Ok(None) };
        let lines = match line_in_row(id, &row)? {
            Some(line) => vec![line],
            None => self.lines(id).await?,
        };
        Ok(Some(Order {
            id: row.try_get("id")?,
            user_id: row.try_get("user_id")?,
            sale_id: row.try_get("sale_id")?,
            status: stored_status(id, &row.try_get::<String, _>("status")?)?,
            total: Price::from_cents(row.try_get("total_cents")?),
            lines,
            created_at: stored_time(id, "created_at", row.try_get("created_at")?)?,
            status_changed_at: stored_time(id, "status_changed_at", row.try_get("status_changed_at")?)?,
        }))
    }

    /// The order's rows in `order_lines`.
    async fn lines(&self, id: &str) -> Result<Vec<Line>, sqlx::Error> {
        let _q = self.db.observe("order.lines");
        let rows = sqlx::query(
            "SELECT product_id, quantity, unit_price_cents FROM order_lines WHERE order_id = ? ORDER BY product_id",
        )
        .bind(id)
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|l| {
                Ok(Line {
                    product_id: l.try_get("product_id")?,
                    quantity: l.try_get("quantity")?,
                    unit_price: Price::from_cents(l.try_get("unit_price_cents")?),
                })
            })
            .collect()
    }

    /// The caller's order, or `None` when it does not exist or is someone else's.
    pub async fn find_owned(&self, id: &str, user_id: i64) -> Result<Option<Order>, OrderRecordError> {
        Ok(self.find(id).await?.filter(|o| o.user_id == user_id))
    }

    /// The caller's order ids, newest first, after `before` (keyset paging).
    pub async fn ids_of(&self, user_id: i64, before: Option<&str>, limit: i64) -> Result<Vec<String>, sqlx::Error> {
        let _q = self.db.observe("order.list");
        let rows = match before {
            Some(before) => {
                sqlx::query("SELECT id FROM orders WHERE user_id = ? AND id < ? ORDER BY id DESC LIMIT ?")
                    .bind(user_id)
                    .bind(before)
                    .bind(limit)
                    .fetch_all(self.db.pool())
                    .await?
            }
            None => {
                sqlx::query("SELECT id FROM orders WHERE user_id = ? ORDER BY id DESC LIMIT ?")
                    .bind(user_id)
                    .bind(limit)
                    .fetch_all(self.db.pool())
                    .await?
            }
        };
        rows.iter().map(|r| r.try_get("id")).collect()
    }

    /// Moves the order from one of `from` to `to`, with `event` (when given) in the same
    /// transaction. `false` when the order was not in any of `from` (already moved).
    pub async fn transition(
        &self,
        id: &str,
        from: &[OrderStatus],
        to: OrderStatus,
        event: Option<(&str, bool)>,
    ) -> Result<bool, OrderRecordError> {
        let order = match event {
            Some(_) => Some(self.find(id).await?.ok_or_else(|| OrderRecordError::Vanished(id.to_owned()))?),
            None => None,
        };
        let mut tx = self.db.pool().begin().await?;
        let moved = Self::transition_in(&mut tx, id, from, to).await?;
        if let (true, Some(order), Some((kind, was_paid))) = (moved, order, event) {
            events::append(&mut tx, Event::new(ORDERS_TOPIC, kind, id, order.event(was_paid))).await?;
        }
        tx.commit().await?;
        Ok(moved)
    }

    pub async fn transition_in(
        tx: &mut Transaction<'_, Any>,
        id: &str,
        from: &[OrderStatus],
        to: OrderStatus,
    ) -> Result<bool, sqlx::Error> {
        let placeholders = vec!["?"; from.len()].join(", ");
        let sql =
            format!("UPDATE orders SET status = ?, status_changed_at = ? WHERE id = ? AND status IN ({placeholders})");
        let mut query = sqlx::query(&sql).bind(to.as_str()).bind(now_millis()).bind(id);
        for status in from {
            query = query.bind(status.as_str());
        }
        Ok(affected(&query.execute(&mut **tx).await?) == 1)
    }

    /// Orders that have been in `status` since before `cutoff_ms` (for the scheduler).
    pub async fn due(&self, status: OrderStatus, cutoff_ms: i64, limit: i64) -> Result<Vec<String>, sqlx::Error> {
        let _q = self.db.observe("order.due");
        let rows = sqlx::query(
            "SELECT id FROM orders WHERE status = ? AND status_changed_at <= ? ORDER BY status_changed_at LIMIT ?",
        )
        .bind(status.as_str())
        .bind(cutoff_ms)
        .bind(limit)
        .fetch_all(self.db.pool())
        .await?;
        rows.iter().map(|r| r.try_get("id")).collect()
    }
}

#[cfg(test)]
mod tests {
    use goodsmall_platform::{configuration::DatabaseSettings, metrics::Metrics};

    use super::*;

    /// A row this code did not write is an error naming the bad value, never read as a
    /// PROCESSING order or one made in 1970.
    #[tokio::test]
    async fn a_stored_value_that_does_not_parse_is_an_error() {
        let settings = DatabaseSettings {
            url: goodsmall_testkit::sqlite_url("order-values").into(),
            max_connections: 1,
            create_if_missing: true,
        };
        let db = Database::connect("order", &settings, &crate::startup::migrations(), &Metrics::new()).await.unwrap();
        events::install_schema(&db).await.unwrap();
        let order = NewOrder { id: "o1".into(), user_id: 7, sale_id: None, lines: vec![], idempotency_key: None };
        let mut tx = db.pool().begin().await.unwrap();
        assert!(Orders::insert(&mut tx, &order).await.unwrap());
        tx.commit().await.unwrap();
        let orders = Orders::new(db.clone());
        let set = |sql: &'static str| {
            let db = db.clone();
            async move { sqlx::query(sql).execute(db.pool()).await.unwrap() }
        };

        set("UPDATE orders SET status = 'SHIPPED'").await;
        let unknown = UnknownOrderStatus("SHIPPED".into());
        let error = orders.find("o1").await.expect_err("an unknown status");
        assert!(matches!(&error, OrderRecordError::UnknownStatus { source, .. } if *source == unknown), "{error:?}");
        let error = orders.status("o1").await.expect_err("an unknown status");
        assert!(matches!(&error, OrderRecordError::UnknownStatus { source, .. } if *source == unknown), "{error:?}");

        set("UPDATE orders SET status = 'COMPLETE', status_changed_at = 9223372036854775807").await;
        let error = orders.find("o1").await.expect_err("a time out of range");
        assert!(
            matches!(&error, OrderRecordError::CorruptTime { source, .. } if *source == TimeOutOfRange(i64::MAX)),
            "{error:?}"
        );
    }
}
