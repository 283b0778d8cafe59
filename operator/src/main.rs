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
    records::{OrderApi, ProductApi, SaleRecords},
    scaling::kubernetes::KubeScaler,
};
use anyhow::Context as _;
use goodsmall_platform::auth::internal::InternalSigner;
use goodsmall_sale::StockEngine;
use kube::{runtime::events::{Recorder, Reporter}, Client};
use kube_lease_manager::LeaseManagerBuilder;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(version, about = "GoodsMall FlashSale operator")]
struct Config {
    /// The order service, which keeps the sales' durable record: the operator records
    /// and drives a FlashSale's sale through its internal API (no database access).
    #[arg(long, env = "GOODSMALL_OPERATOR__ORDER_API_URL", default_value = "http://goodsmall-order:8080")]
    order_api_url: String,
    /// The operator's Ed25519 private key (PKCS#8 PEM) that signs its internal-API
    /// tokens; the order service holds the public half as
    /// GOODSMALL_ORDER__OPERATOR_PUBLIC_KEY_PEM. `openssl genpkey -algorithm ed25519`.
    #[arg(long, env = "GOODSMALL_OPERATOR__INTERNAL_KEY_PEM", hide_env_values = true)]
    internal_key_pem: String,
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

    let signer = InternalSigner::new(&config.internal_key_pem, &config.pod_name).context("GOODSMALL_OPERATOR__INTERNAL_KEY_PEM")?;
    let redis = redis::aio::ConnectionManager::new(redis::Client::open(config.redis_url.as_str())?).await?;
    let engine = StockEngine::redis(redis).with_metrics(metrics.engine_registry());
    let http = serve(config.listen, metrics.clone(), engine.clone(), shutdown.clone()).await?;
    let client = Client::try_default().await?;
    let reconciler = Reconciler {
        records: SaleRecords::new(Arc::new(OrderApi::new(&config.order_api_url, signer)), engine),
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

/// `/metrics`, `/healthz` (the process answers) and `/readyz` (Redis answers), on every
/// replica, leader or not. The order service's own readiness is its own: its outage
/// shows as failed reconciles (Warning Events), not as an unready operator.
async fn serve(addr: SocketAddr, metrics: Arc<Metrics>, engine: StockEngine, shutdown: CancellationToken) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let ready = move || {
        let engine = engine.clone();
        async move {
            match engine.counters(0).await {
                Ok(_) => (StatusCode::OK, "ok".to_owned()),
                Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("redis: {e}")),
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
