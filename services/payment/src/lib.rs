//! Payment service: one payment per order through a PSP adapter, expiry of unpaid
//! orders, and the payment side of the order → payment saga.

pub mod configuration;
pub mod consumer;
pub mod expiry;
pub mod opening;
pub mod payments;
pub mod psp;
mod routes;
pub mod startup;
pub mod state;

/// This service's part of the public API document.
pub use routes::openapi;
