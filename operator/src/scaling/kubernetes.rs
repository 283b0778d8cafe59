//! The cluster side of warm-up scaling: finds what manages each Deployment (a KEDA
//! ScaledObject, else an HPA, else nobody) and changes that object's minimum, or the
//! Deployment's scale subresource.

use async_trait::async_trait;
use k8s_openapi::api::{apps::v1::Deployment, autoscaling::v2::HorizontalPodAutoscaler};
use kube::{
    api::{ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams},
    Api, Client, ResourceExt,
};
use serde_json::json;

use anyhow::Context as _;

use super::{change, settle, Change, Current, Request, ScaleReport, Scaler, Workload, BASELINE, CLAIMS};
use crate::crd::ScaledTarget;

pub const FIELD_MANAGER: &str = "goodsmall-operator";

pub struct KubeScaler {
    client: Client,
    order_deployment: String,
    payment_deployment: String,
    /// One read-change-write at a time: a sale's claim and the floor keeper's
    /// correction of the same object would otherwise each write what the other had not
    /// seen (the only writer, since only the Lease holder runs either).
    writing: tokio::sync::Mutex<()>,
}

/// The object whose replicas the operator changes for a Deployment.
enum Manager {
    ScaledObject(Box<DynamicObject>),
    Hpa(Box<HorizontalPodAutoscaler>),
    Deployment(Box<Deployment>),
}

/// A workload's manager as read: what it is, its name, and its scaling state.
struct Found {
    manager: Manager,
    kind: &'static str,
    name: String,
    current: Current,
}

impl KubeScaler {
    pub fn new(client: Client, order_deployment: String, payment_deployment: String) -> Self {
        Self { client, order_deployment, payment_deployment, writing: tokio::sync::Mutex::new(()) }
    }

    pub fn deployment(&self, w: Workload) -> &str {
        match w {
            Workload::Order => &self.order_deployment,
            Workload::Payment => &self.payment_deployment,
        }
    }

    pub(super) fn scaled_objects(&self, ns: &str) -> Api<DynamicObject> {
        let resource = ApiResource::from_gvk(&GroupVersionKind::gvk("keda.sh", "v1alpha1", "ScaledObject"));
        Api::namespaced_with(self.client.clone(), ns, &resource)
    }

    async fn manager(&self, ns: &str, deployment: &str) -> anyhow::Result<Manager> {
        // KEDA may not be installed: a 404 on its list means no ScaledObjects.
        match self.scaled_objects(ns).list(&ListParams::default()).await {
            Ok(list) => {
                let targets = |so: &DynamicObject| {
                    let target = &so.data["spec"]["scaleTargetRef"];
                    target["name"] == deployment && target["kind"].as_str().is_none_or(|k| k == "Deployment")
                };
                if let Some(so) = list.items.into_iter().find(targets) {
                    return Ok(Manager::ScaledObject(Box::new(so)));
                }
            }
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
        let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(self.client.clone(), ns);
        let targets = |h: &HorizontalPodAutoscaler| {
            h.spec
                .as_ref()
                .is_some_and(|s| s.scale_target_ref.kind == "Deployment" && s.scale_target_ref.name == deployment)
        };
        if let Some(hpa) = hpas.list(&ListParams::default()).await?.items.into_iter().find(targets) {
            return Ok(Manager::Hpa(Box::new(hpa)));
        }
        let deployments: Api<Deployment> = Api::namespaced(self.client.clone(), ns);
        Ok(Manager::Deployment(Box::new(deployments.get(deployment).await?)))
    }

    async fn read(&self, ns: &str, deployment: &str) -> anyhow::Result<Found> {
        let manager = self.manager(ns, deployment).await?;
        // Unset fields are the API's defaults: KEDA's minimum 0 and maximum 100, an
        // HPA's minimum 1, a Deployment's replicas 1.
        let (kind, name, replicas, max, annotations) = match &manager {
            Manager::ScaledObject(so) => {
                let spec = &so.data["spec"];
                let min = spec["minReplicaCount"].as_i64().unwrap_or(0) as i32;
                (
                    "ScaledObject",
                    so.name_any(),
                    min,
                    spec["maxReplicaCount"].as_i64().unwrap_or(100) as i32,
                    so.annotations(),
                )
            }
            Manager::Hpa(hpa) => {
                let spec = hpa.spec.as_ref().expect("filtered on spec");
                (
                    "HorizontalPodAutoscaler",
                    hpa.name_any(),
                    spec.min_replicas.unwrap_or(1),
                    spec.max_replicas,
                    hpa.annotations(),
                )
            }
            Manager::Deployment(d) => (
                "Deployment",
                d.name_any(),
                d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
                i32::MAX,
                d.annotations(),
            ),
        };
        let current = Current { replicas, max, annotations: annotations.clone() };
        Ok(Found { manager, kind, name, current })
    }

    async fn write(&self, ns: &str, found: &Found, next: Change) -> anyhow::Result<()> {
        let Found { kind, name, .. } = found;
        let annotations = json!({ BASELINE: next.baseline, CLAIMS: next.claims });
        let replicas = next.replicas;
        let params = PatchParams::apply(FIELD_MANAGER);
        match found.manager {
            Manager::ScaledObject(_) => {
                let patch =
                    json!({ "metadata": { "annotations": annotations }, "spec": { "minReplicaCount": replicas } });
                self.scaled_objects(ns).patch(name, &params, &Patch::Merge(&patch)).await?;
            }
            Manager::Hpa(_) => {
                let patch = json!({ "metadata": { "annotations": annotations }, "spec": { "minReplicas": replicas } });
                Api::<HorizontalPodAutoscaler>::namespaced(self.client.clone(), ns)
                    .patch(name, &params, &Patch::Merge(&patch))
                    .await?;
            }
            Manager::Deployment(_) => {
                // Claims first: a crash before the scale is repaired by the next reconcile.
                let api = Api::<Deployment>::namespaced(self.client.clone(), ns);
                api.patch(name, &params, &Patch::Merge(&json!({ "metadata": { "annotations": annotations } }))).await?;
                api.patch_scale(name, &params, &Patch::Merge(&json!({ "spec": { "replicas": replicas } }))).await?;
            }
        }
        tracing::info!(kind, name, replicas, "workload replicas changed");
        Ok(())
    }

    async fn set(&self, ns: &str, sale: &str, w: Workload, want: Option<i32>) -> anyhow::Result<Option<ScaledTarget>> {
        let deployment = self.deployment(w);
        let _writing = self.writing.lock().await;
        let found = self.read(ns, deployment).await?;
        let ready = match (&found.manager, want) {
            (_, None) => 0,
            (Manager::Deployment(d), _) => ready_replicas(d),
            _ => ready_replicas(&Api::<Deployment>::namespaced(self.client.clone(), ns).get(deployment).await?),
        };
        let target = want.map(|n| ScaledTarget {
            kind: found.kind.into(),
            name: found.name.clone(),
            replicas: n,
            deployment: deployment.to_owned(),
            ready,
        });
        if let Some(next) =
            change(&found.current, sale, want).with_context(|| format!("{} {}", found.kind, found.name))?
        {
            tracing::info!(sale, "warm-up claim changed");
            self.write(ns, &found, next).await?;
        }
        Ok(target)
    }

    /// Puts a workload back where its floor and claims say, whatever changed it (a
    /// `helm upgrade` of the floor, an apply that reset the field, a hand edit).
    pub async fn settle(&self, ns: &str, w: Workload) -> anyhow::Result<()> {
        let _writing = self.writing.lock().await;
        let found = self.read(ns, self.deployment(w)).await?;
        if let Some(next) = settle(&found.current).with_context(|| format!("{} {}", found.kind, found.name))? {
            self.write(ns, &found, next).await?;
        }
        Ok(())
    }
}

/// The Deployment's Ready pods (the API leaves `readyReplicas` out when there are none).
fn ready_replicas(deployment: &Deployment) -> i32 {
    deployment.status.as_ref().and_then(|s| s.ready_replicas).unwrap_or(0)
}

#[async_trait]
impl Scaler for KubeScaler {
    async fn hold(&self, ns: &str, sale: &str, request: Request) -> anyhow::Result<ScaleReport> {
        let mut held = Vec::new();
        for w in [Workload::Order, Workload::Payment] {
            if let Some(target) = self.set(ns, sale, w, request.of(w)).await? {
                held.push(target);
            }
        }
        Ok(ScaleReport::Applied(held))
    }

    async fn release(&self, ns: &str, sale: &str) -> anyhow::Result<ScaleReport> {
        for w in [Workload::Order, Workload::Payment] {
            self.set(ns, sale, w, None).await?;
        }
        Ok(ScaleReport::Applied(Vec::new()))
    }
}
