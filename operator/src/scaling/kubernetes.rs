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

use super::{change, Current, Request, ScaleReport, Scaler, Workload, BASELINE, CLAIMS};
use crate::crd::ScaledTarget;

pub const FIELD_MANAGER: &str = "goodsmall-operator";

pub struct KubeScaler {
    client: Client,
    order_deployment: String,
    payment_deployment: String,
}

/// The object whose replicas the operator changes for a Deployment.
enum Manager {
    ScaledObject(DynamicObject),
    Hpa(HorizontalPodAutoscaler),
    Deployment(Deployment),
}

impl KubeScaler {
    pub fn new(client: Client, order_deployment: String, payment_deployment: String) -> Self {
        Self { client, order_deployment, payment_deployment }
    }

    fn deployment(&self, w: Workload) -> &str {
        match w {
            Workload::Order => &self.order_deployment,
            Workload::Payment => &self.payment_deployment,
        }
    }

    fn scaled_objects(&self, ns: &str) -> Api<DynamicObject> {
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
                    return Ok(Manager::ScaledObject(so));
                }
            }
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
        let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(self.client.clone(), ns);
        let targets = |h: &HorizontalPodAutoscaler| h.spec.as_ref().is_some_and(|s| s.scale_target_ref.kind == "Deployment" && s.scale_target_ref.name == deployment);
        if let Some(hpa) = hpas.list(&ListParams::default()).await?.items.into_iter().find(targets) {
            return Ok(Manager::Hpa(hpa));
        }
        let deployments: Api<Deployment> = Api::namespaced(self.client.clone(), ns);
        Ok(Manager::Deployment(deployments.get(deployment).await?))
    }

    async fn set(&self, ns: &str, sale: &str, w: Workload, want: Option<i32>) -> anyhow::Result<Option<ScaledTarget>> {
        let deployment = self.deployment(w);
        let manager = self.manager(ns, deployment).await?;
        let (kind, name, current, max) = match &manager {
            Manager::ScaledObject(so) => {
                let spec = &so.data["spec"];
                let min = spec["minReplicaCount"].as_i64().unwrap_or(0) as i32;
                // KEDA's default maximum is 100.
                ("ScaledObject", so.name_any(), Current { replicas: min, annotations: so.annotations().clone() }, spec["maxReplicaCount"].as_i64().unwrap_or(100) as i32)
            }
            Manager::Hpa(hpa) => {
                let spec = hpa.spec.as_ref().expect("filtered on spec");
                let min = spec.min_replicas.unwrap_or(1);
                ("HorizontalPodAutoscaler", hpa.name_any(), Current { replicas: min, annotations: hpa.annotations().clone() }, spec.max_replicas)
            }
            Manager::Deployment(d) => {
                let replicas = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
                ("Deployment", d.name_any(), Current { replicas, annotations: d.annotations().clone() }, i32::MAX)
            }
        };
        let ready = match (&manager, want) {
            (_, None) => 0,
            (Manager::Deployment(d), _) => ready_replicas(d),
            _ => ready_replicas(&Api::<Deployment>::namespaced(self.client.clone(), ns).get(deployment).await?),
        };
        let target = want.map(|n| ScaledTarget { kind: kind.into(), name: name.clone(), replicas: n, deployment: deployment.to_owned(), ready });
        let Some(next) = change(&current, sale, want) else { return Ok(target) };
        // An autoscaler's minimum cannot pass its maximum.
        let replicas = next.replicas.min(max);
        let annotations = json!({ BASELINE: next.baseline, CLAIMS: next.claims });
        let params = PatchParams::apply(FIELD_MANAGER);
        match manager {
            Manager::ScaledObject(_) => {
                let patch = json!({ "metadata": { "annotations": annotations }, "spec": { "minReplicaCount": replicas } });
                self.scaled_objects(ns).patch(&name, &params, &Patch::Merge(&patch)).await?;
            }
            Manager::Hpa(_) => {
                let patch = json!({ "metadata": { "annotations": annotations }, "spec": { "minReplicas": replicas } });
                Api::<HorizontalPodAutoscaler>::namespaced(self.client.clone(), ns).patch(&name, &params, &Patch::Merge(&patch)).await?;
            }
            Manager::Deployment(_) => {
                // Claims first: a crash before the scale is repaired by the next reconcile.
                let api = Api::<Deployment>::namespaced(self.client.clone(), ns);
                api.patch(&name, &params, &Patch::Merge(&json!({ "metadata": { "annotations": annotations } }))).await?;
                api.patch_scale(&name, &params, &Patch::Merge(&json!({ "spec": { "replicas": replicas } }))).await?;
            }
        }
        tracing::info!(sale, kind, name, replicas, "warm-up scaling changed");
        Ok(target)
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

