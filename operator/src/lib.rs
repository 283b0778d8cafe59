//! The FlashSale operator. The decisions are pure functions ([`phase`], [`scaling`],
//! [`validation`]); [`reconcile`] applies them to a sale through [`records`]; the
//! Kubernetes [`controller`] and the one-process [`local`] runner persist the status
//! and report Events each their own way.

pub mod crd;
pub mod duration;
pub mod phase;
pub mod validation;
pub mod scaling;
pub mod capacity;
pub mod reconcile;
pub mod records;
pub mod local;
pub mod controller;
pub mod metrics;
pub mod leader;
