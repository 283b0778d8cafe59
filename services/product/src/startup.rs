//! Builds the product service from its settings and the process-wide parts.

use goodsmall_platform::{
    db::{Database, Migrations},
    events::{self, Bus, RelayHandle},
    service::{RunningService, ServiceParts, Shared},
};
use goodsmall_sale::StockEngine;
use tokio_util::sync::CancellationToken;

use crate::{
    cart::Carts,
    catalogue::Catalogue,
    checkout::Checkouts,
    configuration::{ProductSettings, ServiceConfig},
    demo,
    detail_cache::DetailCache,
    routes,
    state::ProductState,
    stock::LiveStock,
    stock_sync,
};

pub fn migrations() -> Migrations {
    Migrations { mysql: sqlx::migrate!("./migrations/mysql"), sqlite: sqlx::migrate!("./migrations/sqlite") }
}

/// The product service, built: its parts for a server, and handles for tools and tests.
pub struct ProductService {
    pub parts: ServiceParts,
    pub state: ProductState,
}

impl ProductService {
    /// Adds the demo goods unless the catalogue already has products; returns the id
    /// of the product the demo drop sells when it added them.
    pub async fn seed_demo(&self, merchant_id: i64) -> Result<Option<i64>, demo::DemoError> {
        demo::seed(&self.state, merchant_id).await
    }
}

pub async fn build(
    settings: &ProductSettings,
    shared: &Shared,
    bus: &Bus,
    engine: StockEngine,
) -> anyhow::Result<ProductService> {
    let database = Database::connect("product", &settings.database, &migrations(), &shared.metrics).await?;
    events::install_schema(&database).await?;
    let catalogue = Catalogue::new(database.clone());
    let stock = LiveStock::new(engine.clone());
    let carts = Carts::new(database.clone());
    let relay = RelayHandle::default();
    let checkouts =
        Checkouts::new(database.clone(), carts.clone(), catalogue.clone(), stock.clone(), engine, relay.clone());
    let details = DetailCache::new(shared.kv.clone(), catalogue.clone(), settings.cache.clone());
    bus.consume(stock_sync::ProductStock { catalogue: catalogue.clone(), details: details.clone() });
    let state =
        ProductState { details, stock, carts, checkouts, catalogue, authenticator: shared.authenticator.clone() };
    let parts = ServiceParts {
        api: routes::router(state.clone()),
        readiness: shared.readiness(&database),
        workers: vec![events::run_relay(database, bus.clone(), relay, shared.shutdown.clone())],
    };
    Ok(ProductService { parts, state })
}

/// The standalone service: Redis, its own database, its own port.
pub async fn application(
    config: &ServiceConfig,
    bus: &Bus,
    shutdown: CancellationToken,
) -> anyhow::Result<RunningService> {
    let shared = Shared::standalone(&config.redis, &config.auth, shutdown).await?;
    let engine = StockEngine::for_connection(shared.kv.redis_connection()).with_metrics(shared.metrics.registry());
    let service = build(&config.product, &shared, bus, engine).await?;
    RunningService::bind_separate(&config.http, service.parts, &shared).await
}
