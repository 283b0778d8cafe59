//! `goodsmall-operator`: the FlashSale controller for a cluster. Only the replica that
//! holds the Lease acts; every replica serves `/metrics`, `/healthz` and `/readyz`.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context as _;
use axum::{http::StatusCode, routing::get, Router};
use clap::{Args, Parser, Subcommand};
use goodsmall_operator::{
    controller::{self, Context},
    leader,
    metrics::Metrics,
    reconcile::Reconciler,
    records::{OrderApi, ProductApi, SaleRecords},
    scaling::{floors, kubernetes::KubeScaler},
};
use goodsmall_platform::{
    auth::internal::InternalSigner,
    telemetry::{LogFormat, LogSettings},
};
use goodsmall_sale::StockEngine;
use kube::{
    runtime::events::{Recorder, Reporter},
    Client,
};
use kube_lease_manager::LeaseManagerBuilder;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(version, about = "GoodsMall FlashSale operator", args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    config: Config,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controller (the default).
    Run,
    /// Exit 0 when every URL answers 2xx, else 1 naming the first that did not within
    /// the timeout: the chart's `helm test` hooks run it (the images have no shell or
    /// curl). Each URL is asked again every half second until then, since a pod that
    /// just turned Ready reaches every node's Service rules a moment later.
    Probe {
        #[arg(required = true)]
        urls: Vec<String>,
        #[arg(long, default_value_t = 30)]
        timeout_secs: u64,
    },
}

#[derive(Args)]
struct Config {
    /// The order service, which keeps the sales' durable record: the operator records
    /// and drives a FlashSale's sale through its internal API (no database access).
    #[arg(long, env = "GOODSMALL_OPERATOR__ORDER_API_URL", default_value = "http://goodsmall-order:8080")]
    order_api_url: String,
    /// The operator's Ed25519 private key (PKCS#8 PEM) that signs its internal-API
    /// tokens; the order service holds the public half as
    /// GOODSMALL_ORDER__OPERATOR_PUBLIC_KEY_PEM. `openssl genpkey -algorithm ed25519`.
    #[arg(long, env = "GOODSMALL_OPERATOR__INTERNAL_KEY_PEM", hide_env_values = true)]
    internal_key_pem: Option<String>,
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
    /// This pod's uid (the chart passes it): the Lease names every operator pod as an
    /// owner, so it is deleted with the last of them (`helm uninstall`) instead of
    /// staying behind with a stale holder.
    #[arg(long, env = "POD_UID")]
    pod_uid: Option<String>,
    /// How long the Lease is held without renewal: a dead leader is replaced after at
    /// most this many seconds (renewed every third of it).
    #[arg(long, env = "GOODSMALL_OPERATOR__LEASE_DURATION_SECS", default_value_t = 15)]
    lease_duration_secs: u64,
    /// Status refresh while a sale's stock can move, in seconds.
    #[arg(long, env = "GOODSMALL_OPERATOR__REFRESH_SECS", default_value_t = 10)]
    refresh_secs: u64,
    #[arg(long, env = "GOODSMALL_OPERATOR__LISTEN", default_value = "0.0.0.0:8080")]
    listen: SocketAddr,
    /// `pretty` or `json`: the chart sets its `log.format`, the same for every component.
    #[arg(long, env = "GOODSMALL_LOG__FORMAT", default_value = "pretty", value_parser = ["pretty", "json"])]
    log_format: String,
}

/// The environment variables the operator reads its settings from: each argument's
/// `env`. operator/tests/chart_settings.rs (which compiles this file) checks the
/// chart's variables against them.
#[allow(dead_code)] // the binary itself never asks
pub fn setting_variables() -> Vec<String> {
    use clap::CommandFactory;
    Cli::command()
        .get_arguments()
        .filter_map(|arg| arg.get_env())
        .map(|env| env.to_string_lossy().into_owned())
        .collect()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Probe { urls, timeout_secs }) => probe(&urls, Duration::from_secs(timeout_secs)).await,
        None | Some(Command::Run) => run(cli.config).await,
    }
}

async fn probe(urls: &[String], timeout: Duration) -> anyhow::Result<()> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build()?;
    let deadline = tokio::time::Instant::now() + timeout;
    for url in urls {
        loop {
            let answer = client.get(url).send().await;
            match answer {
                Ok(a) if a.status().is_success() => {
                    println!("{url}: {}", a.status());
                    break;
                }
                _ if tokio::time::Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(500)).await,
                Ok(a) => anyhow::bail!("{url} answered {} for {timeout:?}", a.status()),
                Err(e) => return Err(e).with_context(|| format!("{url} did not answer for {timeout:?}")),
            }
        }
    }
    Ok(())
}

async fn run(config: Config) -> anyhow::Result<()> {
    let format = if config.log_format == "json" { LogFormat::Json } else { LogFormat::Pretty };
    goodsmall_platform::telemetry::init(&LogSettings { format, ..Default::default() });
    let metrics = Arc::new(Metrics::default());
    let shutdown = goodsmall_platform::http::shutdown_on_signal();

    // Required to run (not to `probe`): checked here rather than by clap, which would
    // ask for it before any subcommand too.
    let key = config
        .internal_key_pem
        .as_deref()
        .context("GOODSMALL_OPERATOR__INTERNAL_KEY_PEM (--internal-key-pem) is required")?;
    let signer = InternalSigner::new(key, &config.pod_name).context("GOODSMALL_OPERATOR__INTERNAL_KEY_PEM")?;
    let redis = redis::aio::ConnectionManager::new(redis::Client::open(config.redis_url.as_str())?).await?;
    let engine = StockEngine::redis(redis).with_metrics(metrics.engine_registry());
    let http = serve(config.listen, metrics.clone(), engine.clone(), shutdown.clone()).await?;
    let client = Client::try_default().await?;
    let scaler =
        Arc::new(KubeScaler::new(client.clone(), config.order_deployment.clone(), config.payment_deployment.clone()));
    let reconciler = Reconciler {
        records: SaleRecords::new(Arc::new(OrderApi::new(&config.order_api_url, signer)), engine),
        catalogue: Arc::new(ProductApi::new(&config.product_api_url)),
        scaler: scaler.clone(),
        refresh: Duration::from_secs(config.refresh_secs),
    };
    let reporter = Reporter { controller: "goodsmall-operator".into(), instance: Some(config.pod_name.clone()) };
    let ctx = Arc::new(Context::new(client.clone(), reconciler, Recorder::new(client.clone(), reporter), metrics));

    let lease = LeaseManagerBuilder::new(client.clone(), &config.lease_name)
        .with_namespace(&config.namespace)
        .with_identity(&config.pod_name)
        // Grace first: each setter refuses a grace not shorter than the duration.
        .with_grace((config.lease_duration_secs.max(2) / 3).max(1))
        .with_duration(config.lease_duration_secs.max(2))
        .build()
        .await?;
    if let Some(uid) = &config.pod_uid {
        leader::owned_by_pod(&client, &config.namespace, &config.lease_name, &config.pod_name, uid)
            .await
            .context("naming this pod an owner of the Lease")?;
    }
    let (leader, lease_task) = lease.watch().await;
    tracing::info!(identity = config.pod_name, lease = config.lease_name, "waiting for the lease");
    let scaled = vec![config.order_deployment.clone(), config.payment_deployment.clone()];
    // The release's own workloads are kept at their floors (see scaling::floors) by the
    // same leader that holds the sales' claims on them.
    let act = |stop: CancellationToken| {
        let keeper =
            floors::keep(client.clone(), scaler.clone(), config.namespace.clone(), stop.clone().cancelled_owned());
        let controller = controller::run(ctx.clone(), scaled.clone(), stop.cancelled_owned());
        async move {
            tokio::join!(keeper, controller);
        }
    };
    leader::act_while_leading(leader, shutdown.clone(), act).await;
    // The watch channel is gone with `act_while_leading`: the lease task releases the
    // lease, so a follower takes over at once rather than after the lease expires.
    match lease_task.await? {
        Ok(_) => tracing::info!(lease = config.lease_name, "lease released"),
        // `helm uninstall` deletes the Role and the Lease while the pods are still
        // stopping: nothing is left to release, and that is no failure of this process.
        Err(kube_lease_manager::LeaseManagerError::KubeError(kube::Error::Api(e)))
            if e.code == 403 || e.code == 404 =>
        {
            tracing::info!(
                lease = config.lease_name,
                reason = e.reason,
                "lease not released: it or this operator's rights to it are gone (uninstall)"
            )
        }
        Err(e) => return Err(e).context("releasing the lease"),
    }
    http.await?;
    Ok(())
}

/// `/metrics`, `/healthz` (the process answers) and `/readyz` (Redis answers), on every
/// replica, leader or not. The order service's own readiness is its own: its outage
/// shows as failed reconciles (Warning Events), not as an unready operator.
async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    engine: StockEngine,
    shutdown: CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
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
