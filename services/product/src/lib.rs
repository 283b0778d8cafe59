//! Product service: the catalogue (merchant writes, shopper browsing with cursor
//! paging), product detail through a stampede-safe cache, live stock, and the cart.

pub mod cart;
pub mod catalogue;
pub mod checkout;
pub mod configuration;
mod demo;
pub mod detail_cache;
pub mod domain;
mod routes;
pub mod startup;
pub mod state;
pub mod stock;
mod stock_sync;

/// This service's part of the public API document.
pub use routes::openapi;
