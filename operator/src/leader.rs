//! Acting only while holding the lease: the controller starts when this replica becomes
//! the leader and is stopped (and awaited) as soon as it is not, before it could act
//! alongside the new leader. The lease itself is kube-lease-manager's.

use std::future::Future;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Runs `act` whenever `leader` reads true, stopping it through its token when it turns
/// false; returns on `shutdown` (after stopping `act`) or when the lease task ends.
pub async fn act_while_leading<F, Fut>(mut leader: watch::Receiver<bool>, shutdown: CancellationToken, act: F)
where
    F: Fn(CancellationToken) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    loop {
        while !*leader.borrow_and_update() {
            tokio::select! {
                changed = leader.changed() => if changed.is_err() { return },
                _ = shutdown.cancelled() => return,
            }
        }
        tracing::info!("leading: the controller runs");
        let stop = CancellationToken::new();
        let running = tokio::spawn(act(stop.clone()));
        let lease_gone = loop {
            tokio::select! {
                changed = leader.changed() => match changed {
                    Err(_) => break true,
                    Ok(()) if !*leader.borrow() => break false,
                    Ok(()) => {}
                },
                _ = shutdown.cancelled() => break true,
            }
        };
        tracing::info!("not leading any more: the controller stops");
        stop.cancel();
        let _ = running.await;
        if lease_gone {
            return;
        }
    }
}

/// Adds `pod` to the Lease's owners (server-side apply under a field manager of the
/// pod's own, so each replica keeps its entry and the lease manager's fields are
/// untouched). The garbage collector drops the entries of pods that are gone and
/// deletes the Lease with the last one.
pub async fn owned_by_pod(
    client: &kube::Client,
    namespace: &str,
    lease: &str,
    pod: &str,
    uid: &str,
) -> Result<(), kube::Error> {
    use k8s_openapi::api::coordination::v1::Lease;
    use kube::api::{Api, Patch, PatchParams};
    let owner = serde_json::json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": lease,
            "ownerReferences": [{ "apiVersion": "v1", "kind": "Pod", "name": pod, "uid": uid }],
        },
    });
    let manager = format!("goodsmall-operator-owner-{uid}");
    Api::<Lease>::namespaced(client.clone(), namespace)
        .patch(lease, &PatchParams::apply(&manager), &Patch::Apply(owner))
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::{
        sync::{
            atomic::{AtomicI32, Ordering},
            Arc,
        },
        time::Duration,
    };

    use super::*;

    /// The controller stand-in: counts how many copies run at once.
    fn controller(
        running: Arc<AtomicI32>,
        starts: Arc<AtomicI32>,
    ) -> impl Fn(CancellationToken) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> {
        move |stop| {
            let (running, starts) = (running.clone(), starts.clone());
            Box::pin(async move {
                starts.fetch_add(1, Ordering::SeqCst);
                assert_eq!(running.fetch_add(1, Ordering::SeqCst), 0, "two controllers at once");
                stop.cancelled().await;
                tokio::time::sleep(Duration::from_millis(20)).await; // finishing its current reconcile
                running.fetch_sub(1, Ordering::SeqCst);
            })
        }
    }

    async fn settle() {
        tokio::time::sleep(Duration::from_millis(60)).await;
    }

    #[tokio::test]
    async fn the_controller_runs_only_while_this_replica_leads() {
        let (lease, leader) = watch::channel(false);
        let shutdown = CancellationToken::new();
        let (running, starts) = (Arc::new(AtomicI32::new(0)), Arc::new(AtomicI32::new(0)));
        let task =
            tokio::spawn(act_while_leading(leader, shutdown.clone(), controller(running.clone(), starts.clone())));
        settle().await;
        assert_eq!(running.load(Ordering::SeqCst), 0, "a follower does nothing");

        lease.send(true).unwrap();
        settle().await;
        assert_eq!((running.load(Ordering::SeqCst), starts.load(Ordering::SeqCst)), (1, 1), "the leader acts");
        lease.send(true).unwrap();
        settle().await;
        assert_eq!(starts.load(Ordering::SeqCst), 1, "a renewal starts nothing new");

        lease.send(false).unwrap();
        settle().await;
        assert_eq!(running.load(Ordering::SeqCst), 0, "losing the lease stops it");
        lease.send(true).unwrap();
        settle().await;
        assert_eq!(
            (running.load(Ordering::SeqCst), starts.load(Ordering::SeqCst)),
            (1, 2),
            "leading again starts it again"
        );

        shutdown.cancel();
        task.await.unwrap();
        assert_eq!(running.load(Ordering::SeqCst), 0, "shutdown waits for the controller to stop");
    }

    #[tokio::test]
    async fn a_lost_lease_task_stops_the_controller() {
        let (lease, leader) = watch::channel(true);
        let (running, starts) = (Arc::new(AtomicI32::new(0)), Arc::new(AtomicI32::new(0)));
        let task =
            tokio::spawn(act_while_leading(leader, CancellationToken::new(), controller(running.clone(), starts)));
        settle().await;
        assert_eq!(running.load(Ordering::SeqCst), 1);
        drop(lease);
        task.await.unwrap();
        assert_eq!(running.load(Ordering::SeqCst), 0, "no lease manager, no controller");
    }
}
