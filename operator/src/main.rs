//! `goodsmall-operator`: the FlashSale controller for a cluster. Only the replica that
//! holds the Lease acts; every replica serves `/metrics`, `/healthz` and `/readyz`.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{http::StatusCode, routing::get, Router};
use clap::Parser;
use goodsmall_operator::{
    controller::{self, Context},
    leader,
    metrics::Metrics,
    reconcile::Reconciler,
    records::{ProductApi, SaleRecords},
    scaling::kubernetes::KubeScaler,
};
use goodsmall_order::sales::Sales;
use goodsmall_platform::{configuration::DatabaseSettings, db::Database};
use goodsmall_sale::StockEngine;
use kube::{runtime::events::{Recorder, Reporter}, Client};
use kube_lease_manager::LeaseManagerBuilder;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(version, about = "GoodsMall FlashSale operator")]
struct Config {
    /// The order service's database (the sales' durable record).
    #[arg(long, env = "GOODSMALL_OPERATOR__DATABASE_URL", hide_env_values = true)]
    database_url: String,
    /// The Redis the services decide purchases in.
    #[arg(long, env = "GOODSMALL_OPERATOR__REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    redis_url: String,
    /// The product service, to check that a sale's product exists and find its merchant.
    #[arg(long, env = "GOODSMALL_OPERATOR__PRODUCT_API_URL", default_value = "http://goodsmall-product:8080")]
    product_api_url: String,
    #[arg(long, env = "GOODSMALL_OPERATOR__ORDER_DEPLOYMENT", default_value = "goodsmall-order")]
    order_deployment: String,
    #[arg(long, env = "GOODSMALL_OPERATOR__PAYMENT_DEPLOYMENT", default_value = "goodsmall-payment")]
    payment_deployment: String,
    /// The Lease that elects the one acting replica (in POD_NAMESPACE).
    #[arg(long, env = "GOODSMALL_OPERATOR__LEASE_NAME", default_value = "goodsmall-operator")]
    lease_name: String,
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    namespace: String,
    #[arg(long, env = "POD_NAME", default_value = "goodsmall-operator-local")]
    pod_name: String,
    /// How long the Lease is held without renewal: a dead leader is replaced after at
    /// most this many seconds (renewed every third of it).
    #[arg(long, env = "GOODSMALL_OPERATOR__LEASE_DURATION_SECS", default_value_t = 15)]
    lease_duration_secs: u64,
    /// Status refresh while a sale's stock can move, in seconds.
    #[arg(long, env = "GOODSMALL_OPERATOR__REFRESH_SECS", default_value_t = 10)]
    refresh_secs: u64,
    #[arg(long, env = "GOODSMALL_OPERATOR__LISTEN", default_value = "0.0.0.0:8080")]
    listen: SocketAddr,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    goodsmall_platform::telemetry::init(&Default::default());
    let metrics = Arc::new(Metrics::default());
    let shutdown = goodsmall_platform::http::shutdown_on_signal();

    let settings = DatabaseSettings { url: config.database_url.clone(), max_connections: 5, create_if_missing: false };
    let db = Database::connect("order", &settings, &goodsmall_order::startup::migrations(), &goodsmall_platform::metrics::Metrics::new()).await?;
    let redis = redis::aio::ConnectionManager::new(redis::Client::open(config.redis_url.as_str())?).await?;
    let engine = StockEngine::redis(redis);
    let http = serve(config.listen, metrics.clone(), (db.clone(), engine.clone()), shutdown.clone()).await?;
    let client = Client::try_default().await?;
    let reconciler = Reconciler {
        records: SaleRecords::new(Sales::new(db, engine.clone()), engine),
        catalogue: Arc::new(ProductApi::new(&config.product_api_url)),
        scaler: Arc::new(KubeScaler::new(client.clone(), config.order_deployment.clone(), config.payment_deployment.clone())),
        refresh: Duration::from_secs(config.refresh_secs),
    };
    let reporter = Reporter { controller: "goodsmall-operator".into(), instance: Some(config.pod_name.clone()) };
    let ctx = Arc::new(Context::new(client.clone(), reconciler, Recorder::new(client.clone(), reporter), metrics));

    let lease = LeaseManagerBuilder::new(client, &config.lease_name).with_namespace(&config.namespace).with_identity(&config.pod_name)
        // Grace first: each setter refuses a grace not shorter than the duration.
        .with_grace((config.lease_duration_secs.max(2) / 3).max(1))
        .with_duration(config.lease_duration_secs.max(2))
        .build()
        .await?;
    let (leader, lease_task) = lease.watch().await;
    tracing::info!(identity = config.pod_name, lease = config.lease_name, "waiting for the lease");
    leader::act_while_leading(leader, shutdown.clone(), |stop| controller::run(ctx.clone(), stop.cancelled_owned())).await;
    // The watch channel is gone with `act_while_leading`: the lease task releases the lease.
    lease_task.await??;
    http.await?;
    Ok(())
}

/// `/metrics`, `/healthz` (the process answers) and `/readyz` (the order database and
/// Redis answer), on every replica, leader or not.
async fn serve(addr: SocketAddr, metrics: Arc<Metrics>, deps: (Database, StockEngine), shutdown: CancellationToken) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let ready = move || {
        let (db, engine) = deps.clone();
        async move {
            match (db.ping().await, engine.counters(0).await) {
                (Ok(()), Ok(_)) => (StatusCode::OK, "ok".to_owned()),
                (Err(e), _) => (StatusCode::SERVICE_UNAVAILABLE, format!("order database: {e}")),
                (_, Err(e)) => (StatusCode::SERVICE_UNAVAILABLE, format!("redis: {e}")),
            }
        }
    };
    let app = Router::new()
        .route("/metrics", get(move || async move { metrics.render() }))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    Ok(tokio::spawn(async move {
        let _ = axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await;
    }))
}
