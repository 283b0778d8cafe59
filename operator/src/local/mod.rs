//! The operator without a cluster: the one-process shop keeps FlashSale manifests in its
//! database, serves an apply/get/delete API for them, and runs the same reconcile.

pub mod annotate;
pub mod cli;
pub mod routes;
pub mod runner;
pub mod store;

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use goodsmall_platform::{auth::Authenticator, db::Database};
use goodsmall_sale::StockEngine;
use utoipa_axum::router::OpenApiRouter;

use crate::{
    reconcile::Reconciler,
    records::{Catalogue, SaleLedger, SaleRecords},
    scaling::NotApplicable,
};

/// Status refresh while a local sale's stock can move.
pub const REFRESH: Duration = Duration::from_secs(2);

/// Builds the local operator (its runner must still be spawned) and its routes.
/// `manifests` is the local operator's own database (migrated with
/// [`store::migrations`]); `ledger` is the order module itself, in the same process.
pub fn build(
    manifests: Database,
    ledger: Arc<dyn SaleLedger>,
    engine: StockEngine,
    catalogue: Arc<dyn Catalogue>,
    authenticator: Authenticator,
) -> (runner::LocalOperator, OpenApiRouter) {
    let reconciler = Reconciler {
        records: SaleRecords::new(ledger, engine),
        catalogue,
        scaler: Arc::new(NotApplicable),
        refresh: REFRESH,
    };
    let operator = runner::LocalOperator::new(store::ManifestStore::new(manifests), reconciler);
    let routes = routes::router(routes::LocalState { operator: operator.clone(), authenticator });
    (operator, routes)
}

/// A catalogue answered by a function (the shop looks products up in-process).
pub struct CatalogueFn<F>(pub F);

#[async_trait]
impl<F, Fut> Catalogue for CatalogueFn<F>
where
    F: Fn(i64) -> Fut + Send + Sync,
    Fut: std::future::Future<Output = anyhow::Result<Option<i64>>> + Send,
{
    async fn owner_of(&self, product_id: i64) -> anyhow::Result<Option<i64>> {
        (self.0)(product_id).await
    }
}
