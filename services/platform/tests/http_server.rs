//! The shared HTTP stack: problem documents for every failure, body limits, and a
//! graceful shutdown that lets in-flight requests finish.

use std::time::Duration;

use axum::routing::{get, post};
use goodsmall_platform::{
    configuration::HttpSettings,
    extract::Json,
    http::{build_router, HttpServer, Ops, Readiness},
    metrics::Metrics,
};
use tokio_util::sync::CancellationToken;
use utoipa_axum::router::OpenApiRouter;

async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_millis(800)).await;
    "done"
}

async fn stuck() -> &'static str {
    tokio::time::sleep(Duration::from_secs(5)).await;
    "too late"
}

async fn echo(Json(body): Json<serde_json::Value>) -> Json<serde_json::Value> {
    Json(body)
}

async fn boom() -> &'static str {
    panic!("handler bug")
}

async fn start(settings: HttpSettings) -> (String, CancellationToken, tokio::task::JoinHandle<anyhow::Result<()>>) {
    let api = OpenApiRouter::new()
        .route("/slow", get(slow))
        .route("/echo", post(echo))
        .route("/stuck", get(stuck))
        .route("/boom", get(boom));
    let ops = Ops { metrics: Metrics::new(), readiness: Readiness::default(), title: "test".into() };
    let server = HttpServer::bind(&settings, build_router(api, ops, &settings)).await.unwrap();
    let base = format!("http://{}", server.local_addr());
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(server.run(shutdown.clone()));
    (base, shutdown, running)
}

fn settings() -> HttpSettings {
    HttpSettings { port: 0, body_limit_bytes: 1024, request_timeout_secs: 1, ..HttpSettings::default() }
}

#[tokio::test]
async fn shutdown_finishes_requests_in_flight_and_refuses_new_ones() {
    let (base, shutdown, running) = start(settings()).await;
    let in_flight = tokio::spawn(reqwest::get(format!("{base}/slow")));
    tokio::time::sleep(Duration::from_millis(200)).await;
    shutdown.cancel();
    let response = in_flight.await.unwrap().expect("the in-flight request is answered");
    assert_eq!(response.text().await.unwrap(), "done");
    running.await.unwrap().unwrap();
    assert!(reqwest::get(format!("{base}/slow")).await.is_err(), "no new connections after shutdown");
}

#[tokio::test]
async fn failures_are_problem_documents() {
    let (base, _shutdown, _running) = start(settings()).await;
    let client = reqwest::Client::new();
    let cases = [
        (client.get(format!("{base}/nope")), 404, "NOT_FOUND"),
        (client.delete(format!("{base}/echo")), 405, "METHOD_NOT_ALLOWED"),
        (client.post(format!("{base}/echo")).header("content-type", "application/json").body("x".repeat(4096)), 413, "PAYLOAD_TOO_LARGE"),
        (client.post(format!("{base}/echo")).header("content-type", "application/json").body("{oops"), 400, "MALFORMED_JSON"),
        (client.post(format!("{base}/echo")).body("{}"), 415, "UNSUPPORTED_MEDIA_TYPE"),
        (client.get(format!("{base}/stuck")), 408, "REQUEST_TIMEOUT"),
        // A bug in a handler is still a problem document (and logged), never a dropped connection.
        (client.get(format!("{base}/boom")), 500, "INTERNAL"),
    ];
    for (request, status, code) in cases {
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{code}");
        assert_eq!(response.headers()["content-type"], "application/problem+json", "{code}");
        let problem: serde_json::Value = response.json().await.unwrap();
        assert_eq!(problem["code"], code);
    }
}
