//! The order service's internal API for the FlashSale operator: the wire types both
//! sides share. The routes are in the order service's `routes::internal`; the
//! operator's client is `goodsmall_operator::records::OrderApi`. Not in the public
//! OpenAPI document.
//!
//! Every route is under `/internal/flash-sales/{namespace}/{name}` (the manifest's key)
//! and needs the operator's bearer token (`goodsmall_platform::auth::internal`):
//! - `GET`: `FoundSale` (`sale` is null when the manifest has no sale yet);
//! - `PUT` `NewSale`: the sale recorded or brought in line, `200 Sale`; terms that break
//!   [`crate::sales::SaleTerms`]'s rules are `422` `VALIDATION_FAILED` naming each; a
//!   stock below what is held is `409` with `StockBelowCommittedProblem`;
//! - `POST .../load`: the stock engine has the sale, `200 Loaded`;
//! - `POST .../close`: the sale ends now, `204`;
//! - `DELETE`: the settled sale's keys go and the record leaves the manifest, `204`.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::sales::{NewSale, Sale};

/// Path prefix of the internal routes.
pub const PREFIX: &str = "/internal/flash-sales";

/// The path of one manifest's sale.
pub fn path(namespace: &str, name: &str) -> String {
    format!("{PREFIX}/{namespace}/{name}")
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FoundSale {
    pub sale: Option<Sale>,
}

/// The 409 of a `PUT` whose stock is below the units already reserved or sold.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StockBelowCommittedProblem {
    pub code: String,
    pub detail: String,
    pub sale_id: i64,
    pub committed: i64,
}

pub const STOCK_BELOW_COMMITTED: &str = "STOCK_BELOW_COMMITTED";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Loaded {
    /// How many holding orders the sale was rebuilt from, when the engine had lost it
    /// (or loaded it for the first time); null when it was there.
    pub rebuilt_from_orders: Option<usize>,
}

/// Why a [`SaleLedger`] call failed, as far as the operator needs to tell: a refusal
/// it reports on the manifest, a dependency that did not answer, or anything else.
/// Either of the last two fails the reconcile, which is retried; each keeps its
/// failure whole (its message and causes are the failure's own).
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// New terms whose stock is below the units already reserved or sold: the stock
    /// engine's `StockBelowCommitted`, or the internal API's `409`
    /// ([`StockBelowCommittedProblem`]).
    #[error("sale {sale_id}: stock {stock} is below the {committed} units already reserved or sold")]
    StockBelowCommitted { sale_id: i64, stock: i64, committed: i64 },
    /// The order service (a cluster), or the database or stock engine behind it, did
    /// not answer.
    #[error(transparent)]
    Unreachable(Box<dyn std::error::Error + Send + Sync>),
    /// Any other failure (a refused token, an unexpected answer, a corrupt record).
    #[error(transparent)]
    Failed(Box<dyn std::error::Error + Send + Sync>),
}

pub type LedgerResult<T> = Result<T, LedgerError>;

/// What the operator may do to a manifest's sale record (keyed `namespace/name`): the
/// routes above in a cluster, the order module itself in the one-process shop.
#[async_trait]
pub trait SaleLedger: Send + Sync {
    async fn find(&self, manifest: &str) -> LedgerResult<Option<Sale>>;
    /// Records the sale, or brings its terms in line; a stock below the units held is
    /// [`LedgerError::StockBelowCommitted`].
    async fn apply(&self, manifest: &str, terms: NewSale) -> LedgerResult<Sale>;
    /// The stock engine has the sale: `Some(holding orders)` when it was (re)built.
    async fn ensure_loaded(&self, manifest: &str) -> LedgerResult<Option<usize>>;
    async fn close(&self, manifest: &str) -> LedgerResult<()>;
    /// After a deletion settled: the engine's keys go, the record leaves the manifest.
    async fn retire(&self, manifest: &str) -> LedgerResult<()>;
}
