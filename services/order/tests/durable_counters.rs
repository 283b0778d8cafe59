//! What `GET /api/sales/{id}` reports survives the stock engine losing the sale: the
//! order service is restarted with an emptied engine (a Redis restarted without its
//! data; the one-process shop's in-process engine) and a closed sale still reads as
//! before, from its orders; a closed FlashSale's sale is rebuilt in the engine, so the
//! orders settling after the restart still move it. On MariaDB + Redis and on SQLite +
//! the in-process engine.

use goodsmall_order::{
    configuration::{LifecycleSettings, OrderSettings},
    domain::OrderStatus,
    orders::{NewOrder, Orders},
    products::ProductOwners,
    sales::{NewSale, Sale, Sales},
    startup,
};
use goodsmall_platform::{
    auth::{Authenticator, KeyPair},
    configuration::{DatabaseSettings, HttpSettings},
    events::{contracts::OrderLine, Bus, InProcessBus},
    kv::Kv,
    metrics::Metrics,
    money::Price,
    service::{RunningService, Shared},
};
use goodsmall_sale::{Reservation, StockEngine};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// Where the order service keeps its data, and how its stock engine is (re)made.
#[derive(Clone)]
enum Backend {
    /// MariaDB and Redis; a restart flushes the Redis database.
    Distributed { database: String, redis: String },
    /// SQLite and the in-process engine, which a restart empties.
    Embedded { database: String },
}

struct Service {
    base: String,
    sales: Sales,
    orders: Orders,
    engine: StockEngine,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Backend {
    fn database(&self) -> &str {
        match self {
            Self::Distributed { database, .. } | Self::Embedded { database } => database,
        }
    }

    /// Starts the order service on this backend, its engine as a restart leaves it.
    async fn start(&self) -> Service {
        let kv = match self {
            Self::Distributed { redis, .. } => Kv::redis(redis).await.expect("the test Redis"),
            Self::Embedded { .. } => Kv::memory(),
        };
        let engine = StockEngine::for_connection(kv.redis_connection());
        let shutdown = CancellationToken::new();
        let authenticator = Authenticator::new(&KeyPair::generate().public_pem, "goodsmall", kv.clone()).unwrap();
        let shared = Shared { metrics: Metrics::new(), kv, authenticator, shutdown: shutdown.clone() };
        let settings = OrderSettings {
            database: DatabaseSettings { url: self.database().into(), max_connections: 5, create_if_missing: true },
            lifecycle: LifecycleSettings::default(),
            group_commits: 1,
            product_api_url: None,
            operator_public_key_pem: None,
        };
        let products = ProductOwners::in_process(|_| async { Ok(Some(1)) });
        let service = startup::build(&settings, &shared, &Bus::InProcess(InProcessBus::default()), engine.clone(), products).await.expect("the order service starts");
        let (sales, orders) = (service.state.sales.clone(), service.state.orders.clone());
        let http = HttpSettings { port: 0, ..HttpSettings::default() };
        let running = RunningService::bind("order", &http, service.parts, &shared).await.unwrap();
        let base = format!("http://{}", running.local_addr());
        Service { base, sales, orders, engine, shutdown, task: tokio::spawn(running.run()) }
    }

    /// Stops the service, and the engine loses everything (Redis restarted empty).
    async fn restart(&self, service: Service) -> Service {
        service.shutdown.cancel();
        service.task.await.unwrap().unwrap();
        if let Self::Distributed { redis, .. } = self {
            let mut conn = redis::Client::open(redis.as_str()).unwrap().get_multiplexed_async_connection().await.unwrap();
            redis::cmd("FLUSHDB").query_async::<()>(&mut conn).await.unwrap();
        }
        self.start().await
    }
}

impl Service {
    async fn counters(&self, sale_id: i64) -> (i64, i64, i64) {
        let sale: Value = reqwest::get(format!("{}/api/sales/{sale_id}", self.base)).await.unwrap().json().await.unwrap();
        (sale["remaining"].as_i64().unwrap(), sale["reserved"].as_i64().unwrap(), sale["sold"].as_i64().unwrap())
    }

    /// A purchase of `quantity` by `user_id`, committed as its order (PROCESSING).
    async fn bought(&self, sale: &Sale, user_id: i64, quantity: i64) -> String {
        let order_id = uuid::Uuid::now_v7().to_string();
        let reserved = self.engine.reserve(sale.id, user_id, &order_id, quantity, &order_id, goodsmall_platform::clock::now_millis()).await.unwrap();
        assert!(matches!(reserved, Reservation::Reserved { .. }), "{reserved:?}");
        let line = OrderLine { product_id: sale.product_id, quantity, unit_price_cents: sale.price.cents() };
        let mut tx = self.orders.database().pool().begin().await.unwrap();
        Orders::insert(&mut tx, &NewOrder { id: order_id.clone(), user_id, sale_id: Some(sale.id), lines: vec![line] }).await.unwrap();
        tx.commit().await.unwrap();
        order_id
    }

    /// The order is paid, as the saga records it: COMPLETE, and its units sold.
    async fn paid(&self, sale: &Sale, order_id: &str) {
        assert!(self.orders.transition(order_id, &[OrderStatus::Processing], OrderStatus::Complete, None).await.unwrap());
        self.engine.confirm(sale.id, order_id).await.unwrap();
    }
}

fn terms(stock: i64) -> NewSale {
    let now = chrono::Utc::now();
    NewSale { product_id: 1, merchant_id: 1, stock, price: Price::from_cents(4_900), opens_at: now - chrono::Duration::minutes(1), closes_at: now + chrono::Duration::hours(1), per_user_limit: 5 }
}

async fn backends() -> Vec<Backend> {
    vec![
        Backend::Distributed { database: goodsmall_testkit::mysql_url("counters").await, redis: goodsmall_testkit::redis_url().await },
        Backend::Embedded { database: goodsmall_testkit::sqlite_url("counters") },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_sale_reads_the_same_after_the_engine_lost_it() {
    for backend in backends().await {
        let name = backend.database().split(':').next().unwrap().to_owned();
        let service = backend.start().await;
        let sale = service.sales.create(terms(10)).await.unwrap();
        let paid = service.bought(&sale, 1, 1).await;
        service.paid(&sale, &paid).await;
        service.bought(&sale, 2, 2).await;
        service.sales.close(sale.id).await.unwrap();
        assert_eq!(service.counters(sale.id).await, (7, 2, 1), "{name}: before");

        let service = backend.restart(service).await;
        assert!(service.engine.counters(sale.id).await.unwrap().is_none(), "{name}: a closed plain sale is not put back into the engine");
        assert_eq!(service.counters(sale.id).await, (7, 2, 1), "{name}: from the orders after the restart");
        service.shutdown.cancel();
        service.task.await.unwrap().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_flash_sale_is_rebuilt_and_keeps_settling() {
    for backend in backends().await {
        let name = backend.database().split(':').next().unwrap().to_owned();
        let service = backend.start().await;
        let sale = service.sales.apply_flash_sale("local/restart-drop", terms(5)).await.unwrap();
        service.sales.ensure_loaded(&sale).await.unwrap();
        let unpaid = service.bought(&sale, 3, 1).await;
        service.sales.close(sale.id).await.unwrap();
        assert_eq!(service.counters(sale.id).await, (4, 1, 0), "{name}: before");

        let service = backend.restart(service).await;
        let rebuilt = service.engine.counters(sale.id).await.unwrap().unwrap_or_else(|| panic!("{name}: the FlashSale's sale is back in the engine"));
        assert!(rebuilt.closed, "{name}: and still closed");
        service.paid(&sale, &unpaid).await;
        assert_eq!(service.counters(sale.id).await, (4, 0, 1), "{name}: the payment after the restart moved it");
        service.shutdown.cancel();
        service.task.await.unwrap().unwrap();
    }
}
