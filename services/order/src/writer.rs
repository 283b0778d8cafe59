//! Group commit for the purchase hot path. Each reserved purchase must be durable (its
//! order row, its Idempotency-Key and `order.created` outbox row committed) before the
//! shopper gets 202; one transaction per purchase would cap a drop at the database's
//! commit rate, so the writer drains whatever purchases are waiting and commits them
//! together. With `order.group_commits` above 1, that many batches commit at once
//! (MariaDB shares one log flush among concurrent commits), so a purchase arriving
//! mid-commit starts the next batch rather than waiting for the one in progress. Each
//! waiter hears back only after the commit that holds its order. The batch's
//! `order.created` events are claimed before the commit and published from memory
//! after it ([`RelayHandle::claim`]); the outbox relay only reads them back if that
//! fails.
//!
//! Two checks make the order table the truth when the stock engine loses its data:
//! an order reserved in a generation (epoch) of its sale that a rebuild has replaced is
//! not committed (the rebuilt sale does not count its units), and the unique
//! (shopper, sale, key) index turns a second order for one Idempotency-Key into the
//! first order's answer.

use std::{
    collections::{BTreeSet, HashMap, HashSet},
    sync::Arc,
};

use goodsmall_platform::{
    db::{Database, HeldConnection},
    events::RelayHandle,
};
use goodsmall_sale::{SaleId, UserId};
use sqlx::{Acquire, Any, Row, Transaction};
use tokio::{
    sync::{mpsc, oneshot},
    task::JoinSet,
};

use crate::orders::{NewOrder, Orders};

/// Most purchases one commit takes.
pub const MAX_BATCH: usize = 512;

type Reply = oneshot::Sender<Result<Recorded, CommitError>>;

/// What became of a purchase's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// Committed by this call, or it was already.
    Committed,
    /// Another order already holds the purchase's Idempotency-Key (a retry the stock
    /// engine no longer recognised): that order is the answer, and this purchase's
    /// reservation must go back.
    KeyTaken { first_order_id: String },
}

/// Why a purchase's order was not committed. The database's own error is the cause
/// (shared by every purchase of the failed batch), so an unreachable database is told
/// apart from a bug: the HTTP layer answers the first with 503 `SERVICE_UNAVAILABLE`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CommitError {
    #[error("the order writer has stopped")]
    Stopped,
    #[error("committing a batch of {orders} purchase(s) failed")]
    Database { orders: usize, source: SharedDbError },
    /// Reserved in a generation of the sale that the stock engine has since lost and
    /// rebuilt from the orders without it: nothing was recorded, a retry decides anew.
    #[error("order {order_id} was reserved in a stock store that has since lost its data")]
    ReservationLost { order_id: String },
    /// A unique violation whose cause was gone when looked up; nothing was recorded.
    #[error("order {order_id} collided with an order that could not be found")]
    Undecided { order_id: String },
}

/// One database error handed to every waiter of a batch. Its `source` is the
/// `sqlx::Error` itself, so a cause-chain walk finds it.
#[derive(Debug, Clone)]
pub struct SharedDbError(Arc<sqlx::Error>);

impl std::fmt::Display for SharedDbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "database error")
    }
}

impl std::error::Error for SharedDbError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.0.as_ref())
    }
}

struct Pending {
    order: NewOrder,
    /// A retry of an earlier purchase, whose order may already be committed. A new
    /// purchase's order id is minted for it (UUIDv7), so only these can collide.
    may_exist: bool,
    /// The sale's epoch in the stock engine when the purchase was reserved.
    epoch: i64,
    reply: Reply,
}

#[derive(Clone)]
pub struct OrderWriter {
    queue: mpsc::Sender<Pending>,
    metrics: goodsmall_platform::metrics::Metrics,
}

impl OrderWriter {
    /// The task ends when every `OrderWriter` is dropped (after the HTTP server has
    /// drained) and the batches in flight have committed, so purchases in flight at
    /// shutdown are still committed.
    /// `group_commits`: batches committing at once (SQLite: always 1, it has one writer).
    pub fn start(db: Database, relay: RelayHandle, group_commits: usize) -> (Self, tokio::task::JoinHandle<()>) {
        let (queue, inbox) = mpsc::channel(8 * MAX_BATCH);
        let concurrency = if db.is_mysql() { group_commits.max(1) } else { 1 };
        let metrics = db.metrics().clone();
        let task = tokio::spawn(run(db, relay, inbox, concurrency));
        (Self { queue, metrics }, task)
    }

    /// The process's metrics (the purchase path counts its outcomes there).
    pub fn metrics(&self) -> &goodsmall_platform::metrics::Metrics {
        &self.metrics
    }

    /// Returns once the new order, reserved in the sale's `epoch`, is committed.
    pub async fn persist_new(&self, order: NewOrder, epoch: i64) -> Result<Recorded, CommitError> {
        self.persist(order, false, epoch).await
    }

    /// Returns once the order of a repeated purchase is committed (or was already).
    pub async fn persist_repeat(&self, order: NewOrder, epoch: i64) -> Result<Recorded, CommitError> {
        self.persist(order, true, epoch).await
    }

    async fn persist(&self, order: NewOrder, may_exist: bool, epoch: i64) -> Result<Recorded, CommitError> {
        let (reply, answer) = oneshot::channel();
        self.queue.send(Pending { order, may_exist, epoch, reply }).await.map_err(|_| CommitError::Stopped)?;
        answer.await.map_err(|_| CommitError::Stopped)?
    }
}

async fn run(db: Database, relay: RelayHandle, mut inbox: mpsc::Receiver<Pending>, concurrency: usize) {
    // One connection per slot, kept from batch to batch (see `HeldConnection`); a slot
    // comes back here when its batch is committed.
    let (free, mut slots) = mpsc::channel(concurrency);
    for _ in 0..concurrency {
        free.try_send(HeldConnection::default()).expect("room for every slot");
    }
    let mut in_flight = JoinSet::new();
    loop {
        // A free slot first: while every slot commits, purchases gather in the queue and
        // make up the next batch.
        let mut connection = slots.recv().await.expect("this task keeps a sender");
        let mut batch = Vec::with_capacity(MAX_BATCH);
        if inbox.recv_many(&mut batch, MAX_BATCH).await == 0 {
            break;
        }
        let (db, relay, free) = (db.clone(), relay.clone(), free.clone());
        in_flight.spawn(async move {
            commit_and_reply(&db, &relay, &mut connection, batch).await;
            let _ = free.send(connection).await;
        });
        while in_flight.try_join_next().is_some() {}
    }
    while in_flight.join_next().await.is_some() {}
}

async fn commit_and_reply(db: &Database, relay: &RelayHandle, connection: &mut HeldConnection, batch: Vec<Pending>) {
    let started = std::time::Instant::now();
    let result = commit(db, relay, connection, &batch).await;
    db.metrics().drops().commit(batch.len(), result.is_ok(), started.elapsed());
    match result {
        // The reservations stay in the engine; the orphan sweep releases them.
        Err(e) => {
            connection.discard();
            tracing::error!(error = %goodsmall_platform::telemetry::Causes(&e), "committing purchases failed");
            let failed = CommitError::Database { orders: batch.len(), source: SharedDbError(Arc::new(e)) };
            for pending in batch {
                let _ = pending.reply.send(Err(failed.clone()));
            }
        }
        Ok(outcomes) => {
            for pending in batch {
                // Every order of the batch has an outcome; one id twice (a retry within
                // the batch) shares it.
                let outcome = match outcomes.get(&pending.order.id) {
                    Some(outcome) => outcome.clone(),
                    None => Err(CommitError::Undecided { order_id: pending.order.id.clone() }),
                };
                let _ = pending.reply.send(outcome);
            }
        }
    }
}

/// One transaction for the batch, a few multi-row statements in it. Should another
/// replica commit one of the same orders (a retry landing elsewhere) or an order of the
/// same Idempotency-Key meanwhile, that order is skipped (its statement's orders go in
/// one at a time) and then told apart. Orders reserved in a lost generation of their
/// sale are taken out and the rest committed again. Returns each order id's outcome.
async fn commit(
    db: &Database,
    relay: &RelayHandle,
    connection: &mut HeldConnection,
    batch: &[Pending],
) -> Result<HashMap<String, Result<Recorded, CommitError>>, sqlx::Error> {
    let _q = db.observe("order.insert_batch");
    let retried: Vec<&str> = batch.iter().filter(|p| p.may_exist).map(|p| p.order.id.as_str()).collect();
    let existing =
        if retried.is_empty() { Default::default() } else { Orders::new(db.clone()).existing(&retried).await? };
    let mut lost = HashSet::new();
    loop {
        let live: Vec<&Pending> = batch.iter().filter(|p| !lost.contains(&p.order.id)).collect();
        let mut lease = connection.get(db).await?;
        let mut tx = lease.begin().await?;
        let orders: Vec<NewOrder> = live.iter().map(|p| p.order.clone()).collect();
        let (new, created) = Orders::insert_batch_with_events(&mut tx, &orders, &existing).await?;
        let new: HashSet<&str> = new.into_iter().map(|o| o.id.as_str()).collect();
        let inserted: Vec<&Pending> = live.iter().filter(|p| new.contains(p.order.id.as_str())).copied().collect();
        // Each pass either commits or takes out at least one more order, so this ends.
        let stale = reserved_in_lost_generation(db, &mut tx, &inserted).await?;
        if stale.is_empty() {
            // The batch's `order.created` events are published from memory once they
            // commit (a failed commit gives them back to the relay, which then finds
            // nothing to publish, or their rows if the commit went through after all).
            let claim = relay.claim(created);
            tx.commit().await?;
            claim.publish();
            let committed: HashSet<&str> =
                inserted.iter().map(|p| p.order.id.as_str()).chain(existing.iter().map(String::as_str)).collect();
            return outcomes(db, batch, &committed, &lost).await;
        }
        lost.extend(stale);
    }
}

/// The inserted orders whose reservation was made in a generation of their sale that a
/// rebuild has replaced since. On MySQL the sale rows are read with a shared lock held
/// until the commit: a rebuild, which first updates the row's epoch, either waits for
/// this commit (and then reads its orders) or has already replaced the epoch read here.
/// On SQLite the transaction already holds the only write lock.
async fn reserved_in_lost_generation(
    db: &Database,
    tx: &mut Transaction<'_, Any>,
    inserted: &[&Pending],
) -> Result<Vec<String>, sqlx::Error> {
    let sales: BTreeSet<i64> = inserted.iter().filter_map(|p| p.order.sale_id).collect();
    if sales.is_empty() {
        return Ok(Vec::new());
    }
    let marks = vec!["?"; sales.len()].join(", ");
    let lock = if db.is_mysql() { " LOCK IN SHARE MODE" } else { "" };
    let sql = format!("SELECT id, epoch FROM sales WHERE id IN ({marks}){lock}");
    let mut query = sqlx::query(&sql);
    for id in &sales {
        query = query.bind(*id);
    }
    let mut epochs = HashMap::new();
    for row in query.fetch_all(&mut **tx).await? {
        epochs.insert(row.try_get::<i64, _>("id")?, row.try_get::<i64, _>("epoch")?);
    }
    let stale =
        |p: &&&Pending| p.order.sale_id.and_then(|sale| epochs.get(&sale)).is_some_and(|current| p.epoch < *current);
    Ok(inserted.iter().filter(stale).map(|p| p.order.id.clone()).collect())
}

/// Each order's outcome once the commit is done: committed (by this batch or before),
/// taken out as reserved in a lost generation, or skipped on a conflict, which is then
/// looked up: the order itself committed elsewhere, or its key's first order.
async fn outcomes(
    db: &Database,
    batch: &[Pending],
    committed: &HashSet<&str>,
    lost: &HashSet<String>,
) -> Result<HashMap<String, Result<Recorded, CommitError>>, sqlx::Error> {
    let orders = Orders::new(db.clone());
    let skipped: Vec<&Pending> =
        batch.iter().filter(|p| !committed.contains(p.order.id.as_str()) && !lost.contains(&p.order.id)).collect();
    let elsewhere = if skipped.is_empty() {
        HashSet::new()
    } else {
        orders.existing(&skipped.iter().map(|p| p.order.id.as_str()).collect::<Vec<_>>()).await?
    };
    let mut outcomes = HashMap::new();
    for pending in batch {
        let id = &pending.order.id;
        let outcome = if lost.contains(id) {
            Err(CommitError::ReservationLost { order_id: id.clone() })
        } else if committed.contains(id.as_str()) || elsewhere.contains(id) {
            Ok(Recorded::Committed)
        } else {
            let first = match (pending.order.sale_id, &pending.order.idempotency_key) {
                (Some(sale_id), Some(key)) => {
                    orders.find_by_key(UserId(pending.order.user_id), SaleId(sale_id), key).await?
                }
                _ => None,
            };
            match first {
                Some(first_order_id) if first_order_id != *id => Ok(Recorded::KeyTaken { first_order_id }),
                _ => Err(CommitError::Undecided { order_id: id.clone() }),
            }
        };
        outcomes.insert(id.clone(), outcome);
    }
    Ok(outcomes)
}
