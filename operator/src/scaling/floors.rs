//! The floor keeper: while this operator leads, it keeps the order and payment
//! workloads of its own namespace where their floor and the sales' claims say, and
//! corrects them as soon as anything else changes them (see [`super::settle`]). Helm
//! writes the floor as an annotation and never the field itself, so `helm upgrade`
//! works at any time, during a drop too, and its new floor applies at once.

use std::{sync::Arc, time::Duration};

use futures::{stream::BoxStream, FutureExt, StreamExt};
use k8s_openapi::api::{apps::v1::Deployment, autoscaling::v2::HorizontalPodAutoscaler};
use kube::{
    api::ListParams,
    runtime::{watcher, WatchStreamExt},
    Api, Client,
};

use super::{kubernetes::KubeScaler, Workload};

/// A full pass even without events, and the retry after a failed one.
const RESYNC: Duration = Duration::from_secs(60);
const RETRY: Duration = Duration::from_secs(5);

/// Runs until `stop` resolves.
pub async fn keep(
    client: Client,
    scaler: Arc<KubeScaler>,
    namespace: String,
    stop: impl std::future::Future<Output = ()>,
) {
    let mut changes = changes(&client, &scaler, &namespace).await;
    tokio::pin!(stop);
    let mut wait = Duration::ZERO;
    loop {
        tokio::select! {
            _ = &mut stop => return,
            event = changes.next() => if event.is_none() { return },
            _ = tokio::time::sleep(wait) => {}
        }
        // One pass for a burst of events (a helm upgrade touches several objects).
        while let Some(Some(())) = changes.next().now_or_never() {}
        wait = RESYNC;
        for w in [Workload::Order, Workload::Payment] {
            if let Err(e) = scaler.settle(&namespace, w).await {
                tracing::warn!(
                    error = format!("{e:#}"),
                    deployment = scaler.deployment(w),
                    "could not keep the workload's replicas at its floor and claims"
                );
                wait = RETRY;
            }
        }
    }
}

/// Every change of the two Deployments and of the autoscalers beside them.
async fn changes(client: &Client, scaler: &KubeScaler, namespace: &str) -> BoxStream<'static, ()> {
    fn touched<K>(api: Api<K>, config: watcher::Config) -> BoxStream<'static, ()>
    where
        K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
    {
        watcher(api, config)
            .default_backoff()
            .touched_objects()
            .filter_map(|event| async move {
                event
                    .map_err(|e| tracing::debug!(error = %e, "watch of a scaled workload interrupted"))
                    .ok()
                    .map(|_| ())
            })
            .boxed()
    }
    let mut streams = Vec::new();
    for w in [Workload::Order, Workload::Payment] {
        // By name: the operator may read only the two Deployments it scales.
        let only = watcher::Config::default().fields(&format!("metadata.name={}", scaler.deployment(w)));
        streams.push(touched(Api::<Deployment>::namespaced(client.clone(), namespace), only));
    }
    streams.push(touched(
        Api::<HorizontalPodAutoscaler>::namespaced(client.clone(), namespace),
        watcher::Config::default(),
    ));
    // KEDA's ScaledObjects only where KEDA is installed.
    let scaled_objects = scaler.scaled_objects(namespace);
    match scaled_objects.list(&ListParams::default().limit(1)).await {
        Err(kube::Error::Api(e)) if e.code == 404 => {}
        _ => streams.push(touched(scaled_objects, watcher::Config::default())),
    }
    futures::stream::select_all(streams).boxed()
}
