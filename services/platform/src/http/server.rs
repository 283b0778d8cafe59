use std::{net::SocketAddr, time::Duration};

use axum::{
    extract::{DefaultBodyLimit, Request},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
    Json, Router,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::{catch_panic::CatchPanicLayer, trace::TraceLayer};
use utoipa::openapi::{
    security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
    OpenApi,
};
use utoipa_axum::router::OpenApiRouter;

use super::ops::{healthz, readyz, Readiness};
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
    /// Title of the OpenAPI document, e.g. "GoodsMall user service".
    pub title: String,
}

/// The complete router: the service's API plus everything every service has.
pub fn build_router(api: OpenApiRouter, ops: Ops, settings: &HttpSettings) -> Router {
    let (api, mut openapi) = api.split_for_parts();
    describe(&mut openapi, &ops.title);
    let timeout = settings.request_timeout();
    api.route("/api/openapi.json", get(move || async move { Json(openapi) }))
        .route("/healthz", get(healthz))
        .merge(Router::new().route("/readyz", get(readyz)).with_state(ops.readiness))
        .merge(Router::new().route("/metrics", get(metrics::render)).with_state(ops.metrics.clone()))
        .fallback(|| async { ApiError::new(ErrorCode::NotFound, "no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(ErrorCode::MethodNotAllowed, "this route does not accept that method")
        })
        .layer(DefaultBodyLimit::max(settings.body_limit_bytes))
        .layer(middleware::from_fn(move |req: Request, next: Next| with_timeout(timeout, req, next)))
        .layer(middleware::from_fn_with_state(ops.metrics, metrics::track_http))
        .layer(TraceLayer::new_for_http())
        .layer(CatchPanicLayer::custom(|_| ApiError::internal("a request handler panicked").into_response()))
}

async fn with_timeout(limit: Duration, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(ErrorCode::RequestTimeout, format!("no answer within {}s", limit.as_secs())).into_response(),
    }
}

fn describe(openapi: &mut OpenApi, title: &str) {
    openapi.info.title = title.to_owned();
    openapi.info.version = env!("CARGO_PKG_VERSION").to_owned();
    openapi.info.description = Some("GoodsMall HTTP API. Errors are application/problem+json with a stable `code`.".into());
    let components = openapi.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
    );
}

/// A bound, not yet running, HTTP server.
pub struct HttpServer {
    listener: TcpListener,
    router: Router,
}

impl HttpServer {
    /// Binds the configured address (port 0 picks a free port, as tests do).
    pub async fn bind(settings: &HttpSettings, router: Router) -> anyhow::Result<Self> {
        let address = format!("{}:{}", settings.host, settings.port);
        let listener = TcpListener::bind(&address)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {address} (http.host/http.port): {e}"))?;
        Ok(Self { listener, router })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("bound listener has an address")
    }

    /// Serves until `shutdown` is cancelled, then finishes the requests in flight.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await?;
        Ok(())
    }
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
