//! The operator on a real Kubernetes API server (etcd + kube-apiserver, built by
//! `scripts/envtest.sh`; no kubelet, so no pods run): what merchants and SREs meet with
//! `kubectl` — the CRD's schema and CEL rules evaluated by the server, status, printer
//! columns, Events, finalizers, Leases, the scale subresource and RBAC; and the
//! operator binary's metrics scraped by a real Prometheus.

mod autoscalers;
mod changes;
mod chart;
mod cluster;
mod crd;
mod drop;
mod halt;
mod leader;
mod observability;
