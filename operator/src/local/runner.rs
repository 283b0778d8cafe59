//! Runs the operator's reconcile over the shop's local manifests: each one is looked at
//! when it is applied or deleted and again when its plan asks (the next transition, or
//! the live-status refresh), like the cluster controller's requeue.

use std::{collections::HashMap, sync::Arc, time::Duration};

use chrono::Utc;
use tokio::{sync::Notify, task::JoinHandle};
use tokio_util::sync::CancellationToken;

use super::store::ManifestStore;
use crate::reconcile::{Cleanup, Manifest, Reconciler};

/// The shop's manifests live in one namespace.
pub const NAMESPACE: &str = "local";

/// How long to wait after a failed reconcile (database or stock engine unreachable).
const RETRY: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct LocalOperator {
    pub store: ManifestStore,
    reconciler: Reconciler,
    wake: Arc<Notify>,
    /// One reconcile at a time: the runner's passes and an immediate one (a halt) would
    /// otherwise both see the same change and announce it twice.
    one_at_a_time: Arc<tokio::sync::Mutex<()>>,
}

impl LocalOperator {
    pub fn new(store: ManifestStore, reconciler: Reconciler) -> Self {
        Self { store, reconciler, wake: Arc::default(), one_at_a_time: Arc::default() }
    }

    /// Look at every manifest now (after an apply or a delete).
    pub fn nudge(&self) {
        self.wake.notify_one();
    }

    pub fn spawn(self, shutdown: CancellationToken) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut due: HashMap<String, tokio::time::Instant> = HashMap::new();
            loop {
                let next = self.pass(&mut due).await;
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = self.wake.notified() => due.clear(),
                    _ = tokio::time::sleep(next) => {}
                }
            }
        })
    }

    /// One pass over the manifests that are due; returns how long until the next is.
    async fn pass(&self, due: &mut HashMap<String, tokio::time::Instant>) -> Duration {
        let manifests = match self.store.list().await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %goodsmall_platform::error::chain(&e), "could not list FlashSale manifests");
                return RETRY;
            }
        };
        let now = tokio::time::Instant::now();
        due.retain(|name, _| manifests.iter().any(|m| &m.name == name));
        for m in &manifests {
            if due.get(&m.name).is_some_and(|at| *at > now) {
                continue;
            }
            let after = match crate::metrics::local().timed(self.reconcile_one(&m.name)).await {
                Ok(after) => after,
                Err(e) => {
                    tracing::warn!(flashsale = m.name, error = %format!("{e:#}"),
                        "FlashSale reconcile failed; retrying");
                    Some(RETRY)
                }
            };
            match after {
                Some(after) => due.insert(m.name.clone(), now + after),
                None => due.insert(m.name.clone(), now + Duration::from_secs(3600)),
            };
        }
        due.values()
            .min()
            .map_or(Duration::from_secs(3600), |at| at.saturating_duration_since(tokio::time::Instant::now()))
    }

    /// Reconciles the manifest `name` now, before answering (the halt takes effect by the
    /// time `goodsmall flashsale annotate` returns); the runner is nudged either way, so
    /// a failure here is retried there.
    pub async fn reconcile_now(&self, name: &str) {
        if let Err(e) = self.reconcile_one(name).await {
            tracing::warn!(flashsale = name, error = %format!("{e:#}"), "FlashSale reconcile failed; retrying");
        }
        self.nudge();
    }

    /// Read under the lock, so it starts from what another reconcile saved meanwhile.
    async fn reconcile_one(&self, name: &str) -> anyhow::Result<Option<Duration>> {
        let _one = self.one_at_a_time.lock().await;
        let fresh = self.store.get(name).await?;
        let Some(m) = fresh.as_ref() else { return Ok(None) };
        let manifest = Manifest {
            namespace: NAMESPACE,
            name: &m.name,
            generation: Some(m.generation),
            spec: &m.spec,
            status: &m.status,
            merchant_id: Some(m.merchant_id),
            halted: m.halted.as_deref(),
        };
        let now = Utc::now();
        if m.deleting {
            return match self.reconciler.cleanup(&manifest, now).await? {
                Cleanup::Done(notes) => {
                    log(&m.name, &notes);
                    crate::metrics::local().phase(&m.name, None);
                    crate::metrics::local().queue(&m.name, None);
                    self.store.remove(&m.name).await?;
                    Ok(None)
                }
                Cleanup::Waiting(outcome) => {
                    log(&m.name, &outcome.notes);
                    self.store.save(&m.name, &outcome.status, &outcome.notes).await?;
                    Ok(outcome.requeue_after)
                }
            };
        }
        let outcome = self.reconciler.apply(&manifest, now).await?;
        log(&m.name, &outcome.notes);
        crate::metrics::local().phase(&m.name, outcome.status.phase);
        crate::metrics::local().queue(&m.name, outcome.status.queue.as_ref());
        if outcome.status != m.status || !outcome.notes.is_empty() {
            self.store.save(&m.name, &outcome.status, &outcome.notes).await?;
        }
        Ok(outcome.requeue_after)
    }
}

fn log(name: &str, notes: &[crate::reconcile::Note]) {
    for n in notes {
        if n.warning {
            tracing::warn!(flashsale = name, reason = n.reason, "{}", n.message);
        } else {
            tracing::info!(flashsale = name, reason = n.reason, "{}", n.message);
        }
    }
}
