//! The Kubernetes controller: watches FlashSales, runs [`Reconciler`] behind a
//! finalizer, patches the status, publishes Events, and backs off on errors.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::Utc;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use kube::{
    api::{Patch, PatchParams},
    runtime::{
        controller::Action,
        events::{Event, EventType, Recorder},
        finalizer::{finalizer, Event as Finalizer},
        predicates, reflector,
        reflector::ObjectRef,
        watcher, Controller, Predicate, WatchStreamExt,
    },
    Api, Client, Resource, ResourceExt,
};
use serde_json::json;

use crate::{
    crd::FlashSale,
    metrics::Metrics,
    reconcile::{Cleanup, Manifest, Note, Outcome, Reconciler, HALTED_ANNOTATION},
    scaling::kubernetes::FIELD_MANAGER,
};

pub const FINALIZER: &str = "flashsales.goodsmall.io/cleanup";

/// First and largest delay after a failed reconcile (doubling in between).
const BACKOFF: (Duration, Duration) = (Duration::from_secs(5), Duration::from_secs(300));

pub struct Context {
    pub client: Client,
    pub reconciler: Reconciler,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    /// Consecutive failures per FlashSale, for the backoff.
    failures: Mutex<HashMap<String, u32>>,
}

impl Context {
    pub fn new(client: Client, reconciler: Reconciler, recorder: Recorder, metrics: Arc<Metrics>) -> Self {
        Self { client, reconciler, recorder, metrics, failures: Mutex::default() }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("{0:#}")]
    Sale(anyhow::Error),
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
    /// Deletion waits for reservations to be paid or released (not a failure).
    #[error("deleting: {0} reserved units still settling")]
    Settling(i64, Duration),
}

impl Error {
    fn reason(&self) -> &'static str {
        match self {
            Self::Kube(_) => "kube",
            Self::Sale(_) => "sale",
            Self::Finalizer(_) => "finalizer",
            Self::Settling(..) => "settling",
        }
    }
}

fn key(fs: &FlashSale) -> String {
    format!("{}/{}", fs.namespace().unwrap_or_default(), fs.name_any())
}

pub async fn reconcile(fs: Arc<FlashSale>, ctx: Arc<Context>) -> Result<Action, Error> {
    let _timer = ctx.metrics.reconcile();
    let api: Api<FlashSale> = Api::namespaced(ctx.client.clone(), &fs.namespace().unwrap_or_default());
    let action = finalizer(&api, FINALIZER, fs, |event| async {
        match event {
            Finalizer::Apply(fs) => apply(&fs, &ctx).await,
            Finalizer::Cleanup(fs) => cleanup(&fs, &ctx).await,
        }
    })
    .await
    .map_err(|e| match e {
        kube::runtime::finalizer::Error::ApplyFailed(e) | kube::runtime::finalizer::Error::CleanupFailed(e) => e,
        other => Error::Finalizer(Box::new(other)),
    })?;
    Ok(action)
}

fn manifest(fs: &FlashSale) -> Manifest<'_> {
    Manifest {
        namespace: fs.meta().namespace.as_deref().unwrap_or_default(),
        name: fs.meta().name.as_deref().unwrap_or_default(),
        generation: fs.meta().generation,
        spec: &fs.spec,
        status: fs.status.as_ref().unwrap_or(&EMPTY_STATUS),
        merchant_id: None,
        halted: fs.annotations().get(HALTED_ANNOTATION).map(String::as_str),
    }
}

static EMPTY_STATUS: crate::crd::FlashSaleStatus = crate::crd::FlashSaleStatus {
    phase: None,
    sale_id: None,
    remaining: None,
    reserved: None,
    sold: None,
    observed_generation: None,
    conditions: Vec::new(),
    scaling: Vec::new(),
    queue: None,
};

async fn apply(fs: &FlashSale, ctx: &Context) -> Result<Action, Error> {
    let outcome = ctx.reconciler.apply(&manifest(fs), Utc::now()).await.map_err(Error::Sale)?;
    write(fs, ctx, &outcome).await?;
    ctx.failures.lock().unwrap_or_else(|p| p.into_inner()).remove(&key(fs));
    ctx.metrics.phase(&key(fs), outcome.status.phase);
    ctx.metrics.capacity(&key(fs), &outcome.status.scaling);
    ctx.metrics.queue(&key(fs), outcome.status.queue.as_ref());
    Ok(outcome.requeue_after.map_or_else(Action::await_change, Action::requeue))
}

async fn cleanup(fs: &FlashSale, ctx: &Context) -> Result<Action, Error> {
    match ctx.reconciler.cleanup(&manifest(fs), Utc::now()).await.map_err(Error::Sale)? {
        Cleanup::Done(notes) => {
            publish(fs, ctx, &notes).await?;
            ctx.metrics.phase(&key(fs), None);
            ctx.metrics.capacity(&key(fs), &[]);
            ctx.metrics.queue(&key(fs), None);
            Ok(Action::await_change())
        }
        Cleanup::Waiting(outcome) => {
            write(fs, ctx, &outcome).await?;
            // An error keeps the finalizer; `error_policy` looks again after the refresh.
            Err(Error::Settling(outcome.status.reserved.unwrap_or(0), outcome.requeue_after.unwrap_or(BACKOFF.0)))
        }
    }
}

/// Events first, then the status (when it changed).
async fn write(fs: &FlashSale, ctx: &Context, outcome: &Outcome) -> Result<(), Error> {
    publish(fs, ctx, &outcome.notes).await?;
    if fs.status.as_ref() != Some(&outcome.status) {
        let api: Api<FlashSale> = Api::namespaced(ctx.client.clone(), &fs.namespace().unwrap_or_default());
        let patch = json!({ "status": outcome.status });
        api.patch_status(&fs.name_any(), &PatchParams::apply(FIELD_MANAGER), &Patch::Merge(&patch)).await?;
    }
    Ok(())
}

async fn publish(fs: &FlashSale, ctx: &Context, notes: &[Note]) -> Result<(), Error> {
    for n in notes {
        let event = Event {
            type_: if n.warning { EventType::Warning } else { EventType::Normal },
            reason: n.reason.clone(),
            note: Some(n.message.clone()),
            action: "Reconcile".into(),
            secondary: None,
        };
        ctx.recorder.publish(&event, &fs.object_ref(&())).await?;
    }
    Ok(())
}

/// Failed reconciles back off exponentially per object and are reported as a Warning
/// Event; a deletion waiting for reservations is simply looked at again.
pub fn error_policy(fs: Arc<FlashSale>, error: &Error, ctx: Arc<Context>) -> Action {
    if let Error::Settling(_, after) = error {
        return Action::requeue(*after);
    }
    ctx.metrics.failure(error.reason());
    let failures = {
        let mut map = ctx.failures.lock().unwrap_or_else(|p| p.into_inner());
        let n = map.entry(key(&fs)).or_default();
        *n += 1;
        *n
    };
    let delay = BACKOFF.0.saturating_mul(1 << (failures - 1).min(10)).min(BACKOFF.1);
    tracing::warn!(flashsale = key(&fs), error = %error, retry_in = ?delay, "reconcile failed");
    let note = Note {
        warning: true,
        reason: "ReconcileFailed".into(),
        message: format!("{error}; retrying in {}s", delay.as_secs()),
    };
    tokio::spawn(async move {
        if let Err(e) = publish(&fs, &ctx, &[note]).await {
            tracing::warn!(error = %e, "could not publish the failure Event");
        }
    });
    Action::requeue(delay)
}

/// Runs the controller until `stop` resolves. Only spec changes (generation), finalizer
/// changes, the halt annotation and deletion trigger a reconcile, not its own status
/// writes: a busy drop's counters would otherwise re-trigger it in a loop; the requeue
/// keeps the status live. A change of a scaled Deployment (`deployments`, by name, in
/// any namespace: its pods turning Ready) reconciles the FlashSales of its namespace,
/// so the `Scaled` condition follows the pods as they come up.
pub async fn run(
    ctx: Arc<Context>,
    deployments: Vec<String>,
    stop: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let flash_sales = Api::<FlashSale>::all(ctx.client.clone());
    let (reader, writer) = reflector::store();
    let deleting = |fs: &FlashSale| fs.meta().deletion_timestamp.as_ref().map(|_| 1u64);
    // Always a value, so that setting and removing the annotation both count as changes.
    let halt = |fs: &FlashSale| {
        use std::hash::{BuildHasher, BuildHasherDefault};
        Some(
            BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
                .hash_one(fs.annotations().get(HALTED_ANNOTATION)),
        )
    };
    let triggers = watcher(flash_sales, watcher::Config::default().any_semantic())
        .default_backoff()
        .reflect(writer)
        .applied_objects()
        .predicate_filter(
            predicates::generation.combine(predicates::finalizers).combine(deleting).combine(halt),
            Default::default(),
        );
    let mut controller = Controller::for_stream(triggers, reader.clone());
    for name in deployments {
        let reader = reader.clone();
        let same_namespace = move |d: Deployment| {
            let namespace = d.namespace();
            reader
                .state()
                .into_iter()
                .filter(move |fs| fs.namespace() == namespace)
                .map(|fs| ObjectRef::from_obj(&*fs))
                .collect::<Vec<_>>()
        };
        // By name: the operator may read only the two Deployments it scales.
        let only = watcher::Config::default().fields(&format!("metadata.name={name}"));
        controller = controller.watches(Api::<Deployment>::all(ctx.client.clone()), only, same_namespace);
    }
    controller
        .graceful_shutdown_on(stop)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "reconcile ended with an error");
            }
        })
        .await;
}
