//! Group commit for the purchase hot path. Each reserved purchase must be durable (its
//! order row and `order.created` outbox row committed) before the shopper gets 202;
//! one transaction per purchase would cap a drop at the database's commit rate, so the
//! writer drains whatever purchases are waiting and commits them together. With
//! `order.group_commits` above 1, that many batches commit at once (MariaDB shares one
//! log flush among concurrent commits), so a purchase arriving mid-commit starts the
//! next batch rather than waiting for the one in progress. Each waiter hears back only
//! after the commit that holds its order.

use std::sync::Arc;

use goodsmall_platform::{db::Database, events::RelayHandle};
use tokio::{
    sync::{mpsc, oneshot, Semaphore},
    task::JoinSet,
};

use crate::orders::{NewOrder, Orders};

const MAX_BATCH: usize = 512;

type Reply = oneshot::Sender<Result<(), CommitError>>;

/// Why a purchase's order was not committed. The database's own error is the cause
/// (shared by every purchase of the failed batch), so an unreachable database is told
/// apart from a bug: the HTTP layer answers the first with 503 `SERVICE_UNAVAILABLE`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CommitError {
    #[error("the order writer has stopped")]
    Stopped,
    #[error("committing a batch of {orders} purchase(s) failed")]
    Database { orders: usize, source: SharedDbError },
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

    /// Returns once the new order is committed.
    pub async fn persist_new(&self, order: NewOrder) -> Result<(), CommitError> {
        self.persist(order, false).await
    }

    /// Returns once the order of a repeated purchase is committed (or was already).
    pub async fn persist_repeat(&self, order: NewOrder) -> Result<(), CommitError> {
        self.persist(order, true).await
    }

    async fn persist(&self, order: NewOrder, may_exist: bool) -> Result<(), CommitError> {
        let (reply, answer) = oneshot::channel();
        self.queue.send(Pending { order, may_exist, reply }).await.map_err(|_| CommitError::Stopped)?;
        answer.await.map_err(|_| CommitError::Stopped)?
    }
}

async fn run(db: Database, relay: RelayHandle, mut inbox: mpsc::Receiver<Pending>, concurrency: usize) {
    let slots = Arc::new(Semaphore::new(concurrency));
    let mut in_flight = JoinSet::new();
    loop {
        // A free slot first: while every slot commits, purchases gather in the queue and
        // make up the next batch.
        let slot = slots.clone().acquire_owned().await.expect("the semaphore is never closed");
        let mut batch = Vec::with_capacity(MAX_BATCH);
        if inbox.recv_many(&mut batch, MAX_BATCH).await == 0 {
            break;
        }
        let (db, relay) = (db.clone(), relay.clone());
        in_flight.spawn(async move {
            commit_and_reply(&db, &relay, batch).await;
            drop(slot);
        });
        while in_flight.try_join_next().is_some() {}
    }
    while in_flight.join_next().await.is_some() {}
}

async fn commit_and_reply(db: &Database, relay: &RelayHandle, batch: Vec<Pending>) {
    let started = std::time::Instant::now();
    let result = commit(db, &batch)
        .await
        .map_err(|e| CommitError::Database { orders: batch.len(), source: SharedDbError(Arc::new(e)) });
    db.metrics().drops().commit(batch.len(), result.is_ok(), started.elapsed());
    match &result {
        // The reservations stay in the engine; the orphan sweep releases them.
        Err(e) => tracing::error!(error = %goodsmall_platform::telemetry::Causes(e), "committing purchases failed"),
        Ok(()) => relay.wake(),
    }
    for pending in batch {
        let _ = pending.reply.send(result.clone());
    }
}

/// One transaction for the batch, a few multi-row statements in it. Should another
/// replica commit one of the same orders meanwhile (a retry landing elsewhere), the
/// batch is redone row by row, where an existing order is simply skipped.
async fn commit(db: &Database, batch: &[Pending]) -> Result<(), sqlx::Error> {
    let _q = db.observe("order.insert_batch");
    let orders: Vec<NewOrder> = batch.iter().map(|p| p.order.clone()).collect();
    let retried: Vec<&str> = batch.iter().filter(|p| p.may_exist).map(|p| p.order.id.as_str()).collect();
    let existing = if retried.is_empty() {
        Default::default()
    } else {
        Orders::new(db.clone()).existing(&retried).await?
    };
    let mut tx = db.pool().begin().await?;
    match Orders::insert_batch(&mut tx, &orders, &existing).await {
        Ok(_) => return tx.commit().await,
        Err(e) if goodsmall_platform::db::is_unique_violation(&e) => drop(tx),
        Err(e) => return Err(e),
    }
    let mut tx = db.pool().begin().await?;
    for order in &orders {
        Orders::insert(&mut tx, order).await?;
    }
    tx.commit().await
}
