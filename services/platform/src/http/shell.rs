//! What every routed request goes through, in one layer: its metrics, the request
//! time-out, the client's address, the body limit and panics turned into 500 problems.
//!
//! One hand-written service instead of a stack of `from_fn` middlewares: each of those
//! boxed its future and cloned the whole stack below it on every request, which cost the
//! sold-out refusal more than the handler itself (docs/benchmarks.md). Here a request
//! costs one boxed future, one clone of the route below, two atomic metric updates, and
//! a timer only when the answer is not ready at once.

use std::{
    convert::Infallible,
    future::Future,
    panic::AssertUnwindSafe,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use axum::{
    extract::{MatchedPath, Request},
    response::{IntoResponse, Response},
};
use futures_util::{future::BoxFuture, FutureExt};
use tokio::time::{Instant, Sleep};
use tower::{Layer, Service, ServiceExt};

use super::{
    client_address::{self, TrustedProxies},
    limits::{closing, whole_body},
};
use crate::{
    error::{ApiError, ErrorCode},
    metrics::{HttpRouteSeries, Metrics},
};

/// The settings every endpoint's [`Shell`] shares.
struct Settings {
    metrics: Metrics,
    body_limit: usize,
    timeout: Duration,
    trusted: TrustedProxies,
    /// Whether 5xx answers are logged as tower-http's `TraceLayer` logs them (the
    /// `TraceLayer` itself runs only when its debug spans are wanted).
    log_failures: bool,
}

#[derive(Clone)]
pub(super) struct ShellLayer(Arc<Settings>);

impl ShellLayer {
    pub(super) fn new(
        metrics: Metrics,
        body_limit: usize,
        timeout: Duration,
        trusted: TrustedProxies,
        log_failures: bool,
    ) -> Self {
        Self(Arc::new(Settings { metrics, body_limit, timeout, trusted, log_failures }))
    }
}

impl<S> Layer<S> for ShellLayer {
    type Service = Shell<S>;

    /// Called once per route and method: each gets its own cache of metric series.
    fn layer(&self, inner: S) -> Shell<S> {
        let series = self.0.metrics.http_route_series();
        Shell { inner, endpoint: Arc::new(Endpoint { settings: self.0.clone(), series }) }
    }
}

struct Endpoint {
    settings: Arc<Settings>,
    series: HttpRouteSeries,
}

#[derive(Clone)]
pub(super) struct Shell<S> {
    inner: S,
    endpoint: Arc<Endpoint>,
}

impl<S> Service<Request> for Shell<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // The route below is made ready when it is called (`oneshot`).
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        let started = Instant::now();
        let endpoint = self.endpoint.clone();
        let inner = self.inner.clone();
        let route = req.extensions().get::<MatchedPath>().cloned();
        let method = req.method().clone();
        client_address::attach(&endpoint.settings.trusted, &mut req);
        Box::pin(async move {
            let settings = &endpoint.settings;
            let answer = AssertUnwindSafe(within(started + settings.timeout, answer(settings.body_limit, inner, req)))
                .catch_unwind()
                .await;
            let response = match answer {
                Ok(Some(response)) => response,
                // The request's body may be half read: the connection cannot carry another.
                Ok(None) => closing(
                    ApiError::new(
                        ErrorCode::RequestTimeout,
                        format!("no answer within {}s", settings.timeout.as_secs()),
                    )
                    .into_response(),
                ),
                Err(_) => ApiError::internal("a request handler panicked").into_response(),
            };
            let elapsed = started.elapsed();
            let status = response.status();
            endpoint.series.observe(route.as_ref().map(MatchedPath::as_str), &method, status, elapsed);
            if settings.log_failures && status.is_server_error() {
                tracing::error!(
                    target: "tower_http::trace::on_failure",
                    classification = %format_args!("Status code: {status}"),
                    latency = %format_args!("{} ms", elapsed.as_millis()),
                    "response failed"
                );
            }
            Ok(response)
        })
    }
}

/// The route's answer, once the body is read whole within the limit.
async fn answer<S>(body_limit: usize, inner: S, req: Request) -> Response
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    match whole_body(body_limit, req).await {
        Ok(req) => match inner.oneshot(req).await {
            Ok(response) => response,
            Err(never) => match never {},
        },
        Err(refused) => refused,
    }
}

/// `future`'s output, or `None` past `deadline`. The timer is set only if the future
/// is not ready at its first poll: most answers are, and a timer costs a lock on the
/// runtime's timer wheel to set and another to cancel.
async fn within<F: Future>(deadline: Instant, future: F) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    let mut timer: Option<Pin<Box<Sleep>>> = None;
    std::future::poll_fn(move |cx| {
        if let Poll::Ready(output) = future.as_mut().poll(cx) {
            return Poll::Ready(Some(output));
        }
        let timer = timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_ready_answer_needs_no_timer_and_a_slow_one_ends_at_the_deadline() {
        let now = Instant::now();
        assert_eq!(within(now + Duration::from_millis(100), async { 7 }).await, Some(7));
        let slow = within(now + Duration::from_millis(100), tokio::time::sleep(Duration::from_secs(5)));
        assert_eq!(slow.await, None);
        let took = now.elapsed();
        assert!(
            took >= Duration::from_millis(100) && took < Duration::from_secs(2),
            "the deadline counts from the start: {took:?}"
        );
        let pending_then_ready = within(Instant::now() + Duration::from_secs(2), async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            8
        });
        assert_eq!(pending_then_ready.await, Some(8));
    }
}
