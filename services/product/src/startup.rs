//! Builds the product service from its settings and the process-wide parts.

use goodsmall_platform::{
    auth::Authenticator,
    db::{Database, Migrations},
    http::{Check, Readiness},
    kv::Kv,
    metrics::Metrics,
    service::{RunningService, ServiceParts, Shared},
};
use tokio_util::sync::CancellationToken;

use crate::{
    cart::Carts,
    catalogue::Catalogue,
    configuration::{ProductSettings, ServiceConfig},
    demo,
    detail_cache::DetailCache,
    routes,
    state::ProductState,
    stock::LiveStock,
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
    /// Adds the demo goods unless the catalogue already has products.
    pub async fn seed_demo(&self, merchant_id: i64) -> anyhow::Result<()> {
        demo::seed(&self.state, merchant_id).await
    }
}

pub async fn build(settings: &ProductSettings, shared: &Shared) -> anyhow::Result<ProductService> {
    let database = Database::connect("product", &settings.database, &migrations(), &shared.metrics).await?;
    let catalogue = Catalogue::new(database.clone());
    let state = ProductState {
        details: DetailCache::new(shared.kv.clone(), catalogue.clone(), settings.cache.clone()),
        stock: LiveStock::new(shared.kv.clone()),
        carts: Carts::new(database.clone()),
        catalogue,
        authenticator: shared.authenticator.clone(),
    };
    let parts = ServiceParts {
        api: routes::router(state.clone()),
        readiness: Readiness::default().with(Check::Database(database)).with(Check::Kv(shared.kv.clone())),
        workers: Vec::new(),
    };
    Ok(ProductService { parts, state })
}

/// The standalone service: Redis, its own database, its own port.
pub async fn application(config: &ServiceConfig, shutdown: CancellationToken) -> anyhow::Result<RunningService> {
    let metrics = Metrics::new();
    let kv = Kv::redis(&config.redis.url).await?.with_metrics(metrics.clone());
    let authenticator = Authenticator::new(&config.auth.public_key("auth")?, &config.auth.issuer(), kv.clone())?;
    let shared = Shared { metrics, kv, authenticator, shutdown };
    let service = build(&config.product, &shared).await?;
    RunningService::bind("GoodsMall product service", &config.http, service.parts, &shared).await
}
