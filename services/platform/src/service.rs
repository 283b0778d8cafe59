//! How a service crate plugs into a process. A service's `build` returns its parts;
//! its thin binary serves them alone, and the one-process shop merges them all.

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use utoipa_axum::router::OpenApiRouter;

use crate::{
    auth::Authenticator,
    configuration::{ExposeSecret, HttpSettings},
    db::Database,
    http::{build_router, ApiDocument, Check, HttpServer, Ops, Readiness},
    kv::Kv,
    metrics::Metrics,
};

/// Process-wide things every service is built with.
#[derive(Clone)]
pub struct Shared {
    pub metrics: Metrics,
    pub kv: Kv,
    pub authenticator: Authenticator,
    /// Cancelled on SIGTERM; background workers stop when it fires.
    pub shutdown: CancellationToken,
}

impl Shared {
    /// The process-wide parts of a standalone service: Redis for the key-value store
    /// (revoked sessions, caches), and a verifier of access tokens.
    pub async fn standalone(
        redis: &crate::configuration::RedisSettings,
        auth: &crate::auth::KeySettings,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Self> {
        let metrics = Metrics::new();
        let kv = Kv::redis(redis.url.expose_secret()).await?.with_metrics(metrics.clone());
        let authenticator = Authenticator::new(&auth.public_key("auth")?, &auth.issuer(), kv.clone())?;
        Ok(Self { metrics, kv, authenticator, shutdown })
    }

    /// What a service that keeps its own `database` is ready with (`/readyz`): that
    /// database and this process's key-value store answer.
    pub fn readiness(&self, database: &Database) -> Readiness {
        Readiness::default().with(Check::Database(database.clone())).with(Check::Kv(self.kv.clone()))
    }
}

/// A built service: its API routes (with state applied), what it needs to be ready,
/// and its running background workers.
pub struct ServiceParts {
    pub api: OpenApiRouter,
    pub readiness: Readiness,
    pub workers: Vec<JoinHandle<()>>,
}

impl ServiceParts {
    /// Combines services into one (the one-process shop).
    pub fn merge(mut self, other: ServiceParts) -> Self {
        self.api = self.api.merge(other.api);
        self.readiness.extend(other.readiness);
        self.workers.extend(other.workers);
        self
    }
}

/// Binds the HTTP server for `parts`; `run` serves until shutdown and then waits for
/// the background workers to finish their current item.
pub struct RunningService {
    server: HttpServer,
    workers: Vec<JoinHandle<()>>,
    shutdown: CancellationToken,
}

impl RunningService {
    /// A process whose `/api/openapi.json` documents its own routes, under `title` (the
    /// one-process shop, which has them all).
    pub async fn bind(title: &str, http: &HttpSettings, parts: ServiceParts, shared: &Shared) -> anyhow::Result<Self> {
        Self::bind_serving(ApiDocument::Routes { title: title.to_owned() }, http, parts, shared).await
    }

    /// A separate service behind the entry point: its `/api/openapi.json` is the whole
    /// API ([`ApiDocument::Whole`]), the same on every service, so the route table may
    /// send that path to any of them.
    pub async fn bind_separate(http: &HttpSettings, parts: ServiceParts, shared: &Shared) -> anyhow::Result<Self> {
        Self::bind_serving(ApiDocument::Whole, http, parts, shared).await
    }

    async fn bind_serving(
        document: ApiDocument,
        http: &HttpSettings,
        parts: ServiceParts,
        shared: &Shared,
    ) -> anyhow::Result<Self> {
        let ops = Ops { metrics: shared.metrics.clone(), readiness: parts.readiness, document };
        let router = build_router(parts.api, ops, http);
        let server = HttpServer::bind(http, router).await?;
        Ok(Self { server, workers: parts.workers, shutdown: shared.shutdown.clone() })
    }

    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.server.local_addr()
    }

    pub async fn run(self) -> anyhow::Result<()> {
        let result = self.server.run(self.shutdown.clone()).await;
        self.shutdown.cancel();
        for worker in self.workers {
            let _ = worker.await;
        }
        result
    }
}

/// Partitions each event topic is created with (when it does not exist yet): the
/// consumers of one group share at most this many partitions.
pub const TOPIC_PARTITIONS: i32 = 6;

/// The event bus of a process: Kafka when configured (its topics created if missing),
/// else the in-process dispatcher, which only reaches consumers in the same process.
pub async fn event_bus(
    kafka: Option<&crate::events::KafkaSettings>,
    shutdown: CancellationToken,
) -> anyhow::Result<crate::events::Bus> {
    use crate::events::{contracts, Bus, KafkaBus};
    let Some(settings) = kafka else { return Ok(Bus::InProcess(Default::default())) };
    let bus = KafkaBus::connect(settings, shutdown).await?;
    bus.ensure_topics(
        &[contracts::CHECKOUTS_TOPIC, contracts::ORDERS_TOPIC, contracts::PAYMENTS_TOPIC],
        TOPIC_PARTITIONS,
    )
    .await?;
    Ok(Bus::Kafka(bus))
}

/// What a standalone saga service's binary reads (the order, payment and product
/// services, declared by [`service_config!`](crate::service_config)): its settings
/// from `GOODSMALL_CONFIG` and the environment, logging, Kafka.
pub trait StandaloneConfig: crate::configuration::Settings {
    fn log(&self) -> &crate::telemetry::LogSettings;
    fn kafka(&self) -> &crate::events::KafkaSettings;
}

/// The command line of a service binary without commands of its own: `serve`, which
/// is also what no subcommand means (the chart's containers pass none), as for
/// `goodsmall-user`.
fn serve_command(service: &'static str, about: &'static str) -> clap::Command {
    clap::Command::new(service)
        .display_name(format!("goodsmall-{service}"))
        .version(env!("CARGO_PKG_VERSION"))
        .about(about)
        .subcommand(clap::Command::new("serve").about("Serve the HTTP API (the default)"))
}

/// The whole `main` of a standalone saga service: its command line ([`serve_command`]);
/// a bad setting stops it with its message (exit 2); then logging, the event bus,
/// `start`, and serving until a signal.
pub async fn serve_standalone<C: StandaloneConfig>(
    service: &'static str,
    about: &'static str,
    start: impl AsyncFnOnce(&C, &crate::events::Bus, CancellationToken) -> anyhow::Result<RunningService>,
) -> anyhow::Result<()> {
    serve_command(service, about).get_matches();
    let config = C::load().unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2)
    });
    crate::telemetry::init(config.log());
    let shutdown = crate::http::shutdown_on_signal();
    let bus = event_bus(Some(config.kafka()), shutdown.clone()).await?;
    let running = start(&config, &bus, shutdown).await?;
    tracing::info!(address = %running.local_addr(), "{service} service listening");
    running.run().await
}
