//! Sales: the durable record in the order database, mirrored into the stock engine
//! (Redis or in-process) where purchases are decided.

use goodsmall_contracts::admission::{Admission, AdmissionMode};
use goodsmall_platform::{
    clock::{now_millis, to_datetime, TimeOutOfRange},
    db::Database,
    error::Unreachable as _,
    money::Price,
};
use goodsmall_sale::{queue::QueueTerms, EngineError, RecordedOrder, SaleCounters, SaleDefinition, StockEngine, Units};
use sqlx::{any::AnyRow, Any, Row};

use crate::domain::{OrderStatus, UnknownOrderStatus};

use goodsmall_contracts::internal_api::{LedgerError, LedgerResult, SaleLedger};
pub use goodsmall_contracts::sales::{NewSale, Sale};

/// What the stock engine is told of a sale.
pub fn definition(sale: &Sale) -> SaleDefinition {
    SaleDefinition {
        sale_id: sale.id,
        product_id: sale.product_id,
        stock: sale.stock,
        price_cents: sale.price.cents(),
        opens_at_ms: sale.opens_at.timestamp_millis(),
        closes_at_ms: sale.closes_at.timestamp_millis(),
        per_user_limit: sale.per_user_limit,
        queue: sale.admission.map(|a| QueueTerms {
            pre_queue_ms: a.pre_queue_seconds * 1000,
            admit_per_second: a.admit_per_second,
            turn_ttl_ms: a.turn_ttl_seconds * 1000,
        }),
    }
}

/// Why a sale's record could not be read or written, or mirrored into the stock
/// engine. The failure is the source; `routes` gives each its HTTP answer.
#[derive(Debug, thiserror::Error)]
pub enum SalesError {
    /// A FlashSale manifest (`namespace/name`) with no sale recorded, asked to load or close it.
    #[error("flashsale {0} has no sale")]
    NoFlashSale(String),
    /// The stock engine failed, or refused new terms (`EngineError::StockBelowCommitted`).
    #[error("the stock engine failed")]
    Engine(#[from] EngineError),
    #[error("the sales database failed")]
    Database(#[from] sqlx::Error),
    /// A stored instant of the sale (or of one of its orders) that no time can hold.
    #[error("sale {sale_id} holds a corrupt time")]
    CorruptTime {
        sale_id: i64,
        #[source]
        source: TimeOutOfRange,
    },
    #[error("an order of sale {sale_id} has a status this release does not know")]
    UnknownOrderStatus {
        sale_id: i64,
        #[source]
        source: UnknownOrderStatus,
    },
    /// Some of a sale's waiting-room columns set and some NULL: written by no release.
    #[error("sale {sale_id} has a partial waiting room {columns}")]
    PartialWaitingRoom { sale_id: i64, columns: String },
    #[error("new sale {0} vanished")]
    Vanished(i64),
    #[error("sale {0} keeps vanishing from the stock engine")]
    KeepsVanishing(i64),
}

pub type SalesResult<T> = Result<T, SalesError>;

#[derive(Clone)]
pub struct Sales {
    db: Database,
    engine: StockEngine,
    /// One rebuild at a time in this process (the purchase path, the sweeper's tick and
    /// the operator may all find a sale missing at once).
    restoring: std::sync::Arc<tokio::sync::Mutex<()>>,
}

const COLUMNS: &str =
    "id, product_id, merchant_id, stock, price_cents, opens_at, closes_at, per_user_limit, closed_at, \
                       queue_pre_queue_seconds, queue_admit_per_second, queue_turn_ttl_seconds";

impl Sales {
    pub fn new(db: Database, engine: StockEngine) -> Self {
        Self { db, engine, restoring: Default::default() }
    }

    /// Records the sale, then loads it into the stock engine (idempotent, so a crash
    /// between the two is repaired by `restore_lost_sales` at the next start).
    pub async fn create(&self, s: NewSale) -> SalesResult<Sale> {
        let sale = self.create_row(&s, None).await?;
        self.engine.load_sale(&definition(&sale)).await?;
        Ok(sale)
    }

    async fn create_row(&self, s: &NewSale, flash_sale: Option<&str>) -> SalesResult<Sale> {
        let sql = self.db.insert_sql(
            "INSERT INTO sales (product_id, merchant_id, stock, price_cents, opens_at, closes_at, per_user_limit, \
             created_at, flash_sale, queue_pre_queue_seconds, queue_admit_per_second, queue_turn_ttl_seconds) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        );
        let query = sqlx::query(&sql)
            .bind(s.product_id)
            .bind(s.merchant_id)
            .bind(s.stock)
            .bind(s.price.cents())
            .bind(s.opens_at.timestamp_millis())
            .bind(s.closes_at.timestamp_millis())
            .bind(s.per_user_limit)
            .bind(now_millis())
            .bind(flash_sale)
            .bind(s.admission.map(|a| a.pre_queue_seconds))
            .bind(s.admission.map(|a| a.admit_per_second))
            .bind(s.admission.map(|a| a.turn_ttl_seconds));
        let id = {
            let _q = self.db.observe("sale.insert");
            self.db.insert_id(query).await?
        };
        self.find(id).await?.ok_or(SalesError::Vanished(id))
    }

    pub async fn find(&self, id: i64) -> SalesResult<Option<Sale>> {
        let _q = self.db.observe("sale.find");
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM sales WHERE id = ?"))
            .bind(id)
            .fetch_optional(self.db.pool())
            .await?;
        row.map(|r| sale_from_row(&r)).transpose()
    }

    /// The key that signs the sale's admissions (`waiting_room`), made on first use. The
    /// first writer wins, so replicas asking at once all get the same key.
    /// `None` when there is no such sale.
    pub async fn admission_secret(&self, id: i64) -> SalesResult<Option<String>> {
        let _q = self.db.observe("sale.admission_secret");
        sqlx::query("UPDATE sales SET queue_secret = ? WHERE id = ? AND queue_secret IS NULL")
            .bind(crate::waiting_room::new_secret())
            .bind(id)
            .execute(self.db.pool())
            .await?;
        let secret: Option<String> = sqlx::query_scalar("SELECT queue_secret FROM sales WHERE id = ?")
            .bind(id)
            .fetch_optional(self.db.pool())
            .await?
            .flatten();
        Ok(secret)
    }

    /// Ends the sale now: recorded, and the engine refuses further purchases.
    pub async fn close(&self, id: i64) -> SalesResult<()> {
        {
            let _q = self.db.observe("sale.close");
            sqlx::query("UPDATE sales SET closed_at = COALESCE(closed_at, ?) WHERE id = ?")
                .bind(now_millis())
                .bind(id)
                .execute(self.db.pool())
                .await?;
        }
        self.engine.close_sale(id).await?;
        Ok(())
    }

    /// Sales that are open or ended within `window` (where stray reservations may be).
    pub async fn recent(&self, window: std::time::Duration) -> SalesResult<Vec<Sale>> {
        let _q = self.db.observe("sale.recent");
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM sales WHERE closes_at > ?"))
            .bind(now_millis() - window.as_millis() as i64)
            .fetch_all(self.db.pool())
            .await?;
        rows.iter().map(sale_from_row).collect()
    }

    /// Puts back into the engine, when it lacks them (a fresh in-process engine after a
    /// restart, or a Redis that lost its keys), every sale that has not ended and every
    /// sale a FlashSale manifest still drives, open or closed: the operator reads a
    /// manifest's status from the engine, and the orders of a closed drop may still be
    /// settling. Other ended sales stay out; their counters come from the orders.
    pub async fn restore_lost_sales(&self) -> SalesResult<usize> {
        let rows = {
            let _q = self.db.observe("sale.open");
            sqlx::query(&format!(
                "SELECT {COLUMNS} FROM sales WHERE (closed_at IS NULL AND closes_at > ?) OR flash_sale IS NOT NULL"
            ))
            .bind(now_millis())
            .fetch_all(self.db.pool())
            .await?
        };
        let mut restored = 0;
        for row in &rows {
            let sale = sale_from_row(row)?;
            if self.engine.counters(sale.id).await?.is_none() && self.restore(&sale).await?.is_some() {
                restored += 1;
            }
        }
        Ok(restored)
    }

    /// Rebuilds the sale in the engine from its orders when the engine lacks it: the
    /// terms, every order's units and Idempotency-Key go in as one atomic step under a
    /// new epoch, so the remaining stock is what the orders leave, nothing can be sold
    /// twice and a retried purchase finds its first order. `Some(holding orders)` when
    /// this call rebuilt it, `None` when it was there.
    ///
    /// The new epoch is written to the sale's row first, in the transaction that reads
    /// the orders: the order writer checks it under a shared lock, so an order reserved
    /// in the lost engine either committed before (and is read here) or is refused
    /// (writer.rs). Replicas rebuilding at once serialise on that row; the loser finds
    /// the sale back, and its transaction (with its epoch) rolls back.
    pub async fn restore(&self, sale: &Sale) -> SalesResult<Option<usize>> {
        let _one_at_a_time = self.restoring.lock().await;
        if self.engine.counters(sale.id).await?.is_some() {
            return Ok(None);
        }
        let _q = self.db.observe("sale.restore");
        let mut tx = self.db.pool().begin().await?;
        // Strictly above every epoch before, and above any a failed rebuild may have
        // left in the engine (an epoch is the time of its rebuild).
        let now = now_millis();
        sqlx::query("UPDATE sales SET epoch = CASE WHEN epoch < ? THEN ? ELSE epoch + 1 END WHERE id = ?")
            .bind(now)
            .bind(now)
            .bind(sale.id)
            .execute(&mut *tx)
            .await?;
        let row = sqlx::query(&format!("SELECT {COLUMNS}, epoch FROM sales WHERE id = ?"))
            .bind(sale.id)
            .fetch_one(&mut *tx)
            .await?;
        let (current, epoch) = (sale_from_row(&row)?, row.try_get::<i64, _>("epoch")?);
        let orders = recorded_orders(&mut *tx, sale.id).await?;
        if !self.engine.restore_sale(&definition(&current), current.closed_at.is_some(), epoch, &orders).await? {
            return Ok(None);
        }
        tx.commit().await?;
        let holding = orders.iter().filter(|o| o.held() > 0).count();
        tracing::info!(
            sale_id = sale.id,
            orders = orders.len(),
            holding,
            epoch,
            "sale restored into the stock engine from its orders"
        );
        Ok(Some(holding))
    }

    /// The sale's counters: live from the engine, or, when the engine no longer holds
    /// the sale (an ended sale after a restart, a flushed Redis, a retired FlashSale),
    /// from the durable orders: what the engine would be rebuilt from.
    pub async fn counters(&self, sale: &Sale) -> SalesResult<SaleCounters> {
        if let Some(c) = self.engine.counters(sale.id).await? {
            return Ok(c);
        }
        let orders = recorded_orders(self.db.pool(), sale.id).await?;
        let mut c = SaleCounters::rebuilt(&definition(sale), sale.closed_at.is_some(), &orders);
        c.remaining = c.remaining.max(0);
        Ok(c)
    }

    /// The sale a FlashSale manifest (`namespace/name`) drives.
    pub async fn find_flash_sale(&self, manifest: &str) -> SalesResult<Option<Sale>> {
        let _q = self.db.observe("sale.find_flash_sale");
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM sales WHERE flash_sale = ?"))
            .bind(manifest)
            .fetch_optional(self.db.pool())
            .await?;
        row.map(|r| sale_from_row(&r)).transpose()
    }

    /// Records the sale a manifest drives (not yet loaded into the engine), or brings
    /// the recorded terms in line with the manifest. A lower stock is refused below
    /// the units already held (`EngineError::StockBelowCommitted`): the engine decides
    /// when it has the sale, the orders otherwise. The engine takes new terms first, so
    /// a crash in between leaves the record behind, and the next apply repairs it.
    pub async fn apply_flash_sale(&self, manifest: &str, s: NewSale) -> SalesResult<Sale> {
        let Some(current) = self.find_flash_sale(manifest).await? else {
            let sale = self.create_row(&s, Some(manifest)).await?;
            return Ok(sale);
        };
        let wanted = Sale {
            stock: s.stock,
            price: s.price,
            opens_at: s.opens_at,
            closes_at: s.closes_at,
            per_user_limit: s.per_user_limit,
            product_id: s.product_id,
            admission: s.admission,
            ..current.clone()
        };
        if definition(&wanted) == definition(&current) {
            return Ok(current);
        }
        // An engine that lacks the sale is not given it here: a rebuild from the orders
        // (with the terms recorded below) puts it back.
        if self.engine.update_sale(&definition(&wanted)).await?.is_none() {
            let committed: i64 =
                recorded_orders(self.db.pool(), current.id).await?.iter().map(RecordedOrder::held).sum();
            if s.stock < committed {
                return Err(EngineError::StockBelowCommitted { sale_id: current.id, stock: s.stock, committed }.into());
            }
        }
        let _q = self.db.observe("sale.update_terms");
        sqlx::query(
            "UPDATE sales SET product_id = ?, stock = ?, price_cents = ?, opens_at = ?, closes_at = ?, \
            per_user_limit = ? WHERE id = ?",
        )
        .bind(s.product_id)
        .bind(s.stock)
        .bind(s.price.cents())
        .bind(s.opens_at.timestamp_millis())
        .bind(s.closes_at.timestamp_millis())
        .bind(s.per_user_limit)
        .bind(current.id)
        .execute(self.db.pool())
        .await?;
        Ok(wanted)
    }

    /// Makes sure the engine has the sale with its recorded terms: rebuilt from the
    /// orders when it lost it, updated when its terms differ. `Some(holding orders)`
    /// when it had to be rebuilt (or loaded for the first time).
    pub async fn ensure_loaded(&self, sale: &Sale) -> SalesResult<Option<usize>> {
        // Never created empty by an update: lost again in between, it is rebuilt again.
        for _ in 0..3 {
            if let Some(holding) = self.restore(sale).await? {
                return Ok(Some(holding));
            }
            if self.engine.update_sale(&definition(sale)).await?.is_some() {
                return Ok(None);
            }
        }
        Err(SalesError::KeepsVanishing(sale.id))
    }

    /// The manifest's sale, which it must have ([`SalesError::NoFlashSale`] otherwise).
    async fn recorded_flash_sale(&self, manifest: &str) -> SalesResult<Sale> {
        self.find_flash_sale(manifest).await?.ok_or_else(|| SalesError::NoFlashSale(manifest.to_owned()))
    }

    /// [`Sales::ensure_loaded`] for the manifest's recorded sale.
    pub async fn load_flash_sale(&self, manifest: &str) -> SalesResult<Option<usize>> {
        self.ensure_loaded(&self.recorded_flash_sale(manifest).await?).await
    }

    /// Closes the manifest's recorded sale.
    pub async fn close_flash_sale(&self, manifest: &str) -> SalesResult<()> {
        self.close(self.recorded_flash_sale(manifest).await?.id).await
    }

    /// After a manifest is deleted and its sale closed and settled: the engine's keys
    /// go, the record stays (orders point at it) but no longer belongs to the manifest.
    /// Idempotent: a manifest without a sale (already retired) is fine.
    pub async fn retire_flash_sale(&self, manifest: &str) -> SalesResult<()> {
        let Some(sale) = self.find_flash_sale(manifest).await? else { return Ok(()) };
        self.engine.remove_sale(sale.id).await?;
        let _q = self.db.observe("sale.retire");
        sqlx::query("UPDATE sales SET flash_sale = NULL WHERE id = ?").bind(sale.id).execute(self.db.pool()).await?;
        Ok(())
    }
}

fn sale_from_row(row: &AnyRow) -> SalesResult<Sale> {
    let id = row.try_get("id")?;
    let time = |millis| to_datetime(millis).map_err(|source| SalesError::CorruptTime { sale_id: id, source });
    Ok(Sale {
        id,
        product_id: row.try_get("product_id")?,
        merchant_id: row.try_get("merchant_id")?,
        stock: row.try_get("stock")?,
        price: Price::from_cents(row.try_get("price_cents")?),
        opens_at: time(row.try_get("opens_at")?)?,
        closes_at: time(row.try_get("closes_at")?)?,
        per_user_limit: row.try_get("per_user_limit")?,
        closed_at: row.try_get::<Option<i64>, _>("closed_at")?.map(time).transpose()?,
        admission: admission_from_row(row)?,
    })
}

/// The waiting room's three columns: all set, or all NULL (first come, first served).
fn admission_from_row(row: &AnyRow) -> SalesResult<Option<Admission>> {
    let columns = (
        row.try_get::<Option<i64>, _>("queue_pre_queue_seconds")?,
        row.try_get::<Option<i64>, _>("queue_admit_per_second")?,
        row.try_get::<Option<i64>, _>("queue_turn_ttl_seconds")?,
    );
    match columns {
        (Some(pre_queue_seconds), Some(admit_per_second), Some(turn_ttl_seconds)) => {
            Ok(Some(Admission { mode: AdmissionMode::Queue, pre_queue_seconds, admit_per_second, turn_ttl_seconds }))
        }
        (None, None, None) => Ok(None),
        partial => Err(SalesError::PartialWaitingRoom { sale_id: row.try_get("id")?, columns: format!("{partial:?}") }),
    }
}

/// Every order of the sale, with where its units are and its Idempotency-Key: what a
/// rebuild of the sale in the engine is made from.
async fn recorded_orders<'e>(
    executor: impl sqlx::Executor<'e, Database = Any>,
    sale_id: i64,
) -> SalesResult<Vec<RecordedOrder>> {
    // A sale's order has one line: in the order's row (migration 0007's shape) or in
    // order_lines (the shape this release still writes).
    let rows = sqlx::query(
        "SELECT o.id, o.user_id, o.status, o.idempotency_key, COALESCE(o.line_quantity, l.quantity) AS quantity \
         FROM orders o LEFT JOIN order_lines l ON l.order_id = o.id AND o.line_quantity IS NULL \
         WHERE o.sale_id = ? ORDER BY o.id",
    )
    .bind(sale_id)
    .fetch_all(executor)
    .await?;
    rows.iter()
        .map(|r| {
            let status: String = r.try_get("status")?;
            let units = match OrderStatus::parse(&status)
                .map_err(|source| SalesError::UnknownOrderStatus { sale_id, source })?
            {
                OrderStatus::Processing => Units::Reserved,
                OrderStatus::Failed | OrderStatus::Canceled => Units::Released,
                _ => Units::Sold,
            };
            Ok(RecordedOrder {
                order_id: r.try_get("id")?,
                user_id: r.try_get("user_id")?,
                quantity: r.try_get("quantity")?,
                units,
                idempotency_key: r.try_get("idempotency_key")?,
            })
        })
        .collect()
}

/// The one-process shop's operator records its sales here directly, as the cluster's
/// does through the internal API (`routes::internal`, the same calls).
#[async_trait::async_trait]
impl SaleLedger for Sales {
    async fn find(&self, manifest: &str) -> LedgerResult<Option<Sale>> {
        self.find_flash_sale(manifest).await.map_err(ledger_error)
    }
    async fn apply(&self, manifest: &str, terms: NewSale) -> LedgerResult<Sale> {
        self.apply_flash_sale(manifest, terms).await.map_err(ledger_error)
    }
    async fn ensure_loaded(&self, manifest: &str) -> LedgerResult<Option<usize>> {
        self.load_flash_sale(manifest).await.map_err(ledger_error)
    }
    async fn close(&self, manifest: &str) -> LedgerResult<()> {
        self.close_flash_sale(manifest).await.map_err(ledger_error)
    }
    async fn retire(&self, manifest: &str) -> LedgerResult<()> {
        self.retire_flash_sale(manifest).await.map_err(ledger_error)
    }
}

/// The ledger's contract, as the internal API's client answers it: a stock below the
/// units held is `StockBelowCommitted`; an unreachable database or stock engine (the
/// same test as the routes' 503) is `Unreachable`; the rest `Failed`, kept whole.
fn ledger_error(e: SalesError) -> LedgerError {
    match e {
        SalesError::Engine(EngineError::StockBelowCommitted { sale_id, stock, committed }) => {
            LedgerError::StockBelowCommitted { sale_id, stock, committed }
        }
        other if other.unreachable().is_some() => LedgerError::Unreachable(other.into()),
        other => LedgerError::Failed(other.into()),
    }
}
