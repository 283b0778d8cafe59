//! Only tests live here (`tests/pods`): the chart installed with helm on the real
//! one-node cluster of `scripts/cluster.sh`, served by the deployables' own images.
