//! Builds the order service from its settings, the process-wide parts, the event bus
//! and the stock engine.

use goodsmall_platform::{
    db::{Database, Migrations},
    events::{self, Bus, RelayHandle},
    service::{RunningService, ServiceParts, Shared},
};
use goodsmall_sale::{SoldOutFlags, StockEngine};
use tokio_util::sync::CancellationToken;

use crate::{
    configuration::{OrderSettings, ServiceConfig},
    consumers, lifecycle,
    orders::Orders,
    orphans,
    products::ProductOwners,
    purchase::Purchases,
    queue_snapshots::QueueSnapshots,
    routes,
    sales::Sales,
    state::{OrderParts, OrderState},
    waiting_room::WaitingRoom,
    writer::OrderWriter,
};

pub fn migrations() -> Migrations {
    Migrations { mysql: sqlx::migrate!("./migrations/mysql"), sqlite: sqlx::migrate!("./migrations/sqlite") }
}

pub struct OrderService {
    pub parts: ServiceParts,
    pub state: OrderState,
    /// The order database (the one-process shop moves the FlashSale manifests an earlier
    /// release kept here into its operator's own).
    pub database: Database,
}

/// `products` answers who sells a product (the product service, over HTTP or in-process).
pub async fn build(
    settings: &OrderSettings,
    shared: &Shared,
    bus: &Bus,
    engine: StockEngine,
    products: ProductOwners,
) -> anyhow::Result<OrderService> {
    let database = Database::connect("order", &settings.database, &migrations(), &shared.metrics).await?;
    events::install_schema(&database).await?;
    let sales = Sales::new(database.clone(), engine.clone());
    let restored = sales.restore_lost_sales().await?;
    if restored > 0 {
        tracing::info!(sales = restored, "sales restored into the stock engine from their orders");
    }
    let orders = Orders::new(database.clone());
    let relay = RelayHandle::default();
    let (writer, writer_task) = OrderWriter::start(database.clone(), relay.clone(), settings.group_commits);
    let sold_out = SoldOutFlags::default();
    let refresher =
        sold_out.spawn_refresher(engine.clone(), std::time::Duration::from_millis(250), shared.shutdown.clone());
    consumers::subscribe(bus, orders.clone(), engine.clone());
    let queue_snapshots = QueueSnapshots::default();
    let queue_refresher = queue_snapshots.spawn_refresher(engine.clone(), shared.shutdown.clone());
    let state = OrderState::new(OrderParts {
        purchases: Purchases::new(engine.clone(), sales.clone(), orders.clone(), writer, sold_out),
        waiting_room: WaitingRoom::new(
            engine.clone(),
            sales.clone(),
            shared.kv.clone(),
            settings.queue_joins_per_address_per_minute,
            queue_snapshots,
        ),
        sales,
        orders: orders.clone(),
        engine,
        products,
        authenticator: shared.authenticator.clone(),
        return_window_secs: settings.lifecycle.return_window_secs,
    });
    let workers = vec![
        writer_task,
        refresher,
        queue_refresher,
        events::run_relay(database.clone(), bus.clone(), relay, shared.shutdown.clone()),
        lifecycle::run(orders.clone(), settings.lifecycle.clone(), shared.shutdown.clone()),
        crate::sale_metrics::run(
            state.sales.clone(),
            state.engine.clone(),
            shared.metrics.clone(),
            std::time::Duration::from_secs(1),
            shared.shutdown.clone(),
        ),
        orphans::run(
            orders,
            state.sales.clone(),
            state.engine.clone(),
            std::time::Duration::from_secs(settings.lifecycle.orphan_grace_secs),
            settings.lifecycle.tick(),
            shared.shutdown.clone(),
        ),
    ];
    let mut api = routes::router(state.clone());
    if let Some(verifier) = settings.operator_verifier("order")? {
        api = api.merge(routes::internal::router(state.sales.clone(), verifier).into());
    }
    let parts = ServiceParts { api, readiness: shared.readiness(&database), workers };
    Ok(OrderService { parts, state, database })
}

/// The standalone service: Redis (stock engine, revoked sessions), its own database
/// and port, and the product service's API for sales' products.
pub async fn application(
    config: &ServiceConfig,
    bus: &Bus,
    shutdown: CancellationToken,
) -> anyhow::Result<RunningService> {
    let shared = Shared::standalone(&config.redis, &config.auth, shutdown).await?;
    let engine = StockEngine::for_connection(shared.kv.redis_connection()).with_metrics(shared.metrics.registry());
    let products = ProductOwners::api(config.order.product_api("order")?);
    let service = build(&config.order, &shared, bus, engine, products).await?;
    RunningService::bind_separate(&config.http, service.parts, &shared).await
}
