//! The FlashSale operator. The decisions are pure functions ([`phase`], [`scaling`],
//! [`validation`], [`waiting_room`]); [`reconcile`] applies them to a sale through [`records`]; the
//! Kubernetes [`controller`] and the one-process [`local`] runner persist the status
//! and report Events each their own way.

pub mod capacity;
pub mod controller;
pub mod crd;
pub mod duration;
pub mod leader;
pub mod local;
pub mod metrics;
pub mod phase;
pub mod reconcile;
pub mod records;
pub mod scaling;
pub mod validation;
pub mod waiting_room;
