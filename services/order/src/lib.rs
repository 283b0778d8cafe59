//! Order service: flash-sale setup and purchases (atomic reservation in the stock
//! engine, group-committed orders), the order side of the order → payment saga, and
//! the timed after-sale lifecycle.

pub mod configuration;
pub mod consumers;
pub mod domain;
pub mod lifecycle;
pub mod orders;
pub mod orphans;
pub mod products;
pub mod purchase;
pub mod queue_snapshots;
mod routes;
pub mod sale_metrics;
pub mod sales;
pub mod startup;
pub mod state;
pub mod waiting_room;
pub mod writer;

/// This service's part of the public API document.
pub use routes::openapi;
