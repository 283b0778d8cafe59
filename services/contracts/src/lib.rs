//! The contracts between GoodsMall's deployables, so that each links this small crate
//! instead of another deployable: the operator reads and drives sales without linking
//! the order service (its HTTP server, its database, its migrations).
//!
//! - [`sales`]: a sale's record and terms as the order service answers them, in its
//!   public API and in its internal one;
//! - [`admission`]: a sale's waiting room as the merchant declares it;
//! - [`internal_api`]: the order service's internal API for the FlashSale operator, and
//!   [`internal_api::SaleLedger`], what the operator may do to a manifest's sale: over
//!   that API in a cluster, in-process in the one-process shop.
//!
//! The Kafka events the services exchange are in `goodsmall_platform::events`.

pub mod admission;
pub mod internal_api;
pub mod sales;
