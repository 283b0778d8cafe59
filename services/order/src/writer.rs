//! Group commit for the purchase hot path. Each reserved purchase must be durable (its
//! order row and `order.created` outbox row committed) before the shopper gets 202;
//! one transaction per purchase would cap a drop at the database's commit rate, so a
//! single task drains whatever purchases are waiting and commits them together.
//! Each waiter hears back only after the commit that holds its order.

use goodsmall_platform::{db::Database, events::RelayHandle};
use tokio::sync::{mpsc, oneshot};

use crate::orders::{NewOrder, Orders};

const MAX_BATCH: usize = 512;

type Reply = oneshot::Sender<Result<(), String>>;

#[derive(Clone)]
pub struct OrderWriter {
    queue: mpsc::Sender<(NewOrder, Reply)>,
}

impl OrderWriter {
    /// The task ends when every `OrderWriter` is dropped (after the HTTP server has
    /// drained), so purchases in flight at shutdown are still committed.
    pub fn start(db: Database, relay: RelayHandle) -> (Self, tokio::task::JoinHandle<()>) {
        let (queue, inbox) = mpsc::channel(8 * MAX_BATCH);
        let task = tokio::spawn(run(db, relay, inbox));
        (Self { queue }, task)
    }

    /// Returns once the order is committed (or was already there).
    pub async fn persist(&self, order: NewOrder) -> anyhow::Result<()> {
        let (reply, answer) = oneshot::channel();
        self.queue.send((order, reply)).await.map_err(|_| anyhow::anyhow!("the order writer has stopped"))?;
        answer.await.map_err(|_| anyhow::anyhow!("the order writer stopped before committing"))?.map_err(anyhow::Error::msg)
    }
}

async fn run(db: Database, relay: RelayHandle, mut inbox: mpsc::Receiver<(NewOrder, Reply)>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while inbox.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let result = commit(&db, &batch).await;
        if let Err(e) = &result {
            tracing::error!(error = %e, orders = batch.len(), "committing purchases failed");
        } else {
            relay.wake();
        }
        for (_, reply) in batch.drain(..) {
            let _ = reply.send(result.clone().map_err(|e| e.to_string()));
        }
    }
}

/// One transaction for the batch, a few multi-row statements in it. Should another
/// replica commit one of the same orders meanwhile (a retry landing elsewhere), the
/// batch is redone row by row, where an existing order is simply skipped.
async fn commit(db: &Database, batch: &[(NewOrder, Reply)]) -> Result<(), String> {
    let _q = db.observe("order.insert_batch");
    let orders: Vec<NewOrder> = batch.iter().map(|(order, _)| order.clone()).collect();
    let ids: Vec<&str> = orders.iter().map(|o| o.id.as_str()).collect();
    let existing = Orders::new(db.clone()).existing(&ids).await.map_err(|e| e.to_string())?;
    let mut tx = db.pool().begin().await.map_err(|e| e.to_string())?;
    match Orders::insert_batch(&mut tx, &orders, &existing).await {
        Ok(_) => return tx.commit().await.map_err(|e| e.to_string()),
        Err(e) if goodsmall_platform::db::is_unique_violation(&e) => drop(tx),
        Err(e) => return Err(e.to_string()),
    }
    let mut tx = db.pool().begin().await.map_err(|e| e.to_string())?;
    for order in &orders {
        Orders::insert(&mut tx, order).await.map_err(|e| e.to_string())?;
    }
    tx.commit().await.map_err(|e| e.to_string())
}
