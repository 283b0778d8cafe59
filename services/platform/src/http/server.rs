use std::net::SocketAddr;

use axum::{extract::DefaultBodyLimit, http::header::CONTENT_TYPE, routing::get, Router};
use tokio::net::{TcpListener, TcpSocket};
use tokio_util::sync::CancellationToken;
use tower_http::trace::TraceLayer;
use utoipa_axum::router::OpenApiRouter;

use super::{
    document::ApiDocument,
    ops::{healthz, readyz, Readiness},
    shell::ShellLayer,
};
use crate::{
    configuration::HttpSettings,
    error::{ApiError, ErrorCode},
    metrics::{self, Metrics},
};

/// What the operational endpoints need.
#[derive(Clone)]
pub struct Ops {
    pub metrics: Metrics,
    pub readiness: Readiness,
    /// What `/api/openapi.json` answers.
    pub document: ApiDocument,
}

/// The complete router: the service's API plus everything every service has.
pub fn build_router(api: OpenApiRouter, ops: Ops, settings: &HttpSettings) -> Router {
    let (api, openapi) = api.split_for_parts();
    let document = ops.document.json(openapi);
    // tower-http's TraceLayer opens a debug span per request and logs each answer at
    // debug: it runs only when those are wanted. Otherwise the shell logs what it would
    // log at the levels that are on (5xx answers, at error).
    let trace = tracing::enabled!(target: "tower_http::trace::make_span", tracing::Level::DEBUG);
    let shell = ShellLayer::new(
        ops.metrics.clone(),
        settings.body_limit_bytes,
        settings.request_timeout(),
        settings.trusted_proxies.clone(),
        !trace,
    );
    let router = api
        .route("/api/openapi.json", get(move || async move { ([(CONTENT_TYPE, "application/json")], document) }))
        .route("/healthz", get(healthz))
        .merge(Router::new().route("/readyz", get(readyz)).with_state(ops.readiness))
        .merge(Router::new().route("/metrics", get(metrics::render)).with_state(ops.metrics))
        .fallback(|| async { ApiError::new(ErrorCode::NotFound, "no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(ErrorCode::MethodNotAllowed, "this route does not accept that method")
        });
    // The shell reads every body whole within the limit before a handler runs; the
    // extractors' own limit (axum's 2 MiB unless told) only needs raising above that.
    let router = if settings.body_limit_bytes > AXUM_BODY_LIMIT {
        router.layer(DefaultBodyLimit::max(settings.body_limit_bytes))
    } else {
        router
    };
    let router = router.layer(shell);
    if trace {
        router.layer(TraceLayer::new_for_http())
    } else {
        router
    }
}

/// The body limit of axum's extractors when no `DefaultBodyLimit` says otherwise.
const AXUM_BODY_LIMIT: usize = 2 * 1024 * 1024;

/// A bound, not yet running, HTTP server.
pub struct HttpServer {
    listener: TcpListener,
    router: Router,
}

/// The configured address could not be listened on.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {address} (http.host/http.port, http.backlog): {source}")]
pub struct BindError {
    pub address: String,
    #[source]
    pub source: std::io::Error,
}

impl HttpServer {
    /// Binds the configured address (port 0 picks a free port, as tests do) with a
    /// listen queue of `http.backlog` connections.
    pub async fn bind(settings: &HttpSettings, router: Router) -> Result<Self, BindError> {
        let address = format!("{}:{}", settings.host, settings.port);
        let listener = listen(&address, settings.backlog).await.map_err(|source| BindError { address, source })?;
        Ok(Self { listener, router })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("bound listener has an address")
    }

    /// Serves until `shutdown` is cancelled, then finishes the requests in flight.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        // Connection info gives handlers the peer address (the client address of throttles).
        axum::serve(self.listener, self.router.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await?;
        Ok(())
    }
}

/// A listening socket on the first address `address` resolves to that accepts one. A
/// burst of new connections waits in the kernel's queue of `backlog` until accepted;
/// beyond it they are dropped and retried by the client a second later. The kernel
/// caps the queue at `net.core.somaxconn`.
async fn listen(address: &str, backlog: u32) -> std::io::Result<TcpListener> {
    let mut last_error = None;
    for addr in tokio::net::lookup_host(address).await? {
        let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
        // As `TcpListener::bind` does: a restarted server may rebind while its old
        // connections linger in TIME_WAIT.
        #[cfg(unix)]
        socket.set_reuseaddr(true)?;
        match socket.bind(addr).and_then(|()| socket.listen(backlog)) {
            Ok(listener) => return Ok(listener),
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error
        .unwrap_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "the host resolves to no address")))
}

/// A token cancelled on SIGTERM or Ctrl-C: the signal to drain and stop.
pub fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! { _ = ctrl_c => {}, _ = term => {} }
        tracing::info!("shutdown signal received; draining in-flight requests");
        trigger.cancel();
    });
    token
}
