//! What the durable-state tests share: the order service on MariaDB + Redis or on
//! SQLite + the in-process engine, restarted with an emptied engine (a Redis restarted
//! without its data; the one-process shop's in-process engine).

#![allow(dead_code)] // each test binary uses part of this

use goodsmall_order::{
    configuration::{LifecycleSettings, OrderSettings},
    domain::OrderStatus,
    orders::{NewOrder, Orders},
    products::ProductOwners,
    purchase::Purchases,
    sales::{NewSale, Sale, Sales},
    startup,
    waiting_room::WaitingRoom,
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
use goodsmall_sale::{Quantity, Reservation, ReservationRequest, SaleId, StockEngine, UserId};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// Where the order service keeps its data, and how its stock engine is (re)made.
#[derive(Clone)]
pub enum Backend {
    /// MariaDB and Redis; a restart flushes the Redis database.
    Distributed { database: String, redis: String },
    /// SQLite and the in-process engine, which a restart empties.
    Embedded { database: String },
}

pub struct Service {
    pub base: String,
    pub sales: Sales,
    pub orders: Orders,
    pub engine: StockEngine,
    pub purchases: Purchases,
    pub waiting_room: WaitingRoom,
    pub shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Backend {
    pub fn database(&self) -> &str {
        match self {
            Self::Distributed { database, .. } | Self::Embedded { database } => database,
        }
    }

    /// Starts the order service on this backend, its engine as a restart leaves it.
    pub async fn start(&self) -> Service {
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
            queue_joins_per_address_per_minute: 20,
        };
        let products = ProductOwners::in_process(|_| async { Ok(Some(1)) });
        let service =
            startup::build(&settings, &shared, &Bus::InProcess(InProcessBus::default()), engine.clone(), products)
                .await
                .expect("the order service starts");
        let (sales, orders, purchases) =
            (service.state.sales.clone(), service.state.orders.clone(), service.state.purchases.clone());
        let waiting_room = service.state.waiting_room.clone();
        let http = HttpSettings { port: 0, ..HttpSettings::default() };
        let running = RunningService::bind("order", &http, service.parts, &shared).await.unwrap();
        let base = format!("http://{}", running.local_addr());
        Service { base, sales, orders, engine, purchases, waiting_room, shutdown, task: tokio::spawn(running.run()) }
    }

    /// Stops the service, and the engine loses everything (Redis restarted empty).
    pub async fn restart(&self, service: Service) -> Service {
        service.stop().await;
        if let Self::Distributed { redis, .. } = self {
            let mut conn =
                redis::Client::open(redis.as_str()).unwrap().get_multiplexed_async_connection().await.unwrap();
            redis::cmd("FLUSHDB").query_async::<()>(&mut conn).await.unwrap();
        }
        self.start().await
    }
}

impl Service {
    /// Stops the service as SIGTERM does (its order writer ends once no handle is left).
    pub async fn stop(self) {
        drop(self.purchases);
        drop(self.waiting_room);
        self.shutdown.cancel();
        self.task.await.unwrap().unwrap();
    }

    pub async fn counters(&self, sale_id: i64) -> (i64, i64, i64) {
        let sale: Value =
            reqwest::get(format!("{}/api/sales/{sale_id}", self.base)).await.unwrap().json().await.unwrap();
        (sale["remaining"].as_i64().unwrap(), sale["reserved"].as_i64().unwrap(), sale["sold"].as_i64().unwrap())
    }

    /// A purchase of `quantity` by `user_id`, committed as its order (PROCESSING).
    pub async fn bought(&self, sale: &Sale, user_id: i64, quantity: i64) -> String {
        let order_id = uuid::Uuid::now_v7().to_string();
        let reserved = self
            .engine
            .reserve(&ReservationRequest {
                sale: SaleId(sale.id),
                user: UserId(user_id),
                key: &order_id,
                quantity: Quantity::new(quantity).unwrap(),
                order: &order_id,
                at_ms: goodsmall_platform::clock::now_millis(),
                turn_ends_ms: None,
            })
            .await
            .unwrap();
        assert!(matches!(reserved, Reservation::Reserved { .. }), "{reserved:?}");
        let line = OrderLine { product_id: sale.product_id, quantity, unit_price_cents: sale.price.cents() };
        let mut tx = self.orders.database().pool().begin().await.unwrap();
        Orders::insert(
            &mut tx,
            &NewOrder {
                id: order_id.clone(),
                user_id,
                sale_id: Some(sale.id),
                lines: vec![line],
                idempotency_key: None,
            },
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        order_id
    }

    /// The order is paid, as the saga records it: COMPLETE, and its units sold.
    pub async fn paid(&self, sale: &Sale, order_id: &str) {
        assert!(self
            .orders
            .transition(order_id, &[OrderStatus::Processing], OrderStatus::Complete, None)
            .await
            .unwrap());
        self.engine.confirm(sale.id, order_id).await.unwrap();
    }
}

pub fn terms(stock: i64) -> NewSale {
    let now = chrono::Utc::now();
    NewSale {
        product_id: 1,
        merchant_id: 1,
        stock,
        price: Price::from_cents(4_900),
        opens_at: now - chrono::Duration::minutes(1),
        closes_at: now + chrono::Duration::hours(1),
        per_user_limit: 5,
        admission: None,
    }
}

pub async fn backends() -> Vec<Backend> {
    vec![
        Backend::Distributed {
            database: goodsmall_testkit::mysql_url("counters").await,
            redis: goodsmall_testkit::redis_url().await,
        },
        Backend::Embedded { database: goodsmall_testkit::sqlite_url("counters") },
    ]
}
