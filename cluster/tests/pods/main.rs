//! The chart on a real one-node Kubernetes cluster (`scripts/cluster.sh`: kubelet,
//! containerd, kube-proxy, CoreDNS, metrics-server): pods start from the deployables'
//! own images, with the chart's probes, environment, Secrets, security context and
//! in-cluster identities, and serve a whole drop through their Services. Each test
//! installs its own release with helm v4 into a namespace of its own.

mod autoscaling;
mod capacity;
mod drop;
mod faults;
mod install;
mod queued_drop;
mod release;
mod shoppers;
mod uninstall;
mod upgrade;
