//! The shared HTTP stack: problem documents for every failure, body limits, and a
//! graceful shutdown that lets in-flight requests finish.

use std::{
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

use axum::routing::{get, post};
use goodsmall_platform::{
    configuration::HttpSettings,
    extract::Json,
    http::{build_router, HttpServer, Ops, Readiness},
    metrics::Metrics,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
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

/// Counts its calls: a route that takes no body.
static NO_BODY_CALLS: AtomicUsize = AtomicUsize::new(0);
async fn no_body() -> &'static str {
    NO_BODY_CALLS.fetch_add(1, Ordering::SeqCst);
    "ran"
}

async fn start(settings: HttpSettings) -> (String, CancellationToken, tokio::task::JoinHandle<anyhow::Result<()>>) {
    let api = OpenApiRouter::new()
        .route("/slow", get(slow))
        .route("/echo", post(echo))
        .route("/stuck", get(stuck))
        .route("/boom", get(boom))
        .route("/no-body", post(no_body));
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

/// A route that reads no body still meets the body limit, whether the body declares
/// its length or comes in chunks; a small body does not stop it.
#[tokio::test]
async fn a_route_without_a_body_meets_the_body_limit_too() {
    let (base, _shutdown, _running) = start(settings()).await;
    let client = reqwest::Client::new();
    let calls = || NO_BODY_CALLS.load(Ordering::SeqCst);
    let before = calls();
    let declared = client.post(format!("{base}/no-body")).header("content-type", "application/json").body("x".repeat(4096)).send().await.unwrap();
    assert_eq!(declared.status(), 413);
    assert_eq!(declared.headers()["content-type"], "application/problem+json");
    assert_eq!(declared.json::<serde_json::Value>().await.unwrap()["code"], "PAYLOAD_TOO_LARGE");

    let chunk = format!("{:x}\r\n{}\r\n", 1024, "y".repeat(1024));
    let request = format!("POST /no-body HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{}0\r\n\r\n", chunk.repeat(4));
    let mut stream = TcpStream::connect(base.trim_start_matches("http://")).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("PAYLOAD_TOO_LARGE"), "{answer}");
    assert_eq!(calls(), before, "the handler never ran");

    let small = client.post(format!("{base}/no-body")).body("{}").send().await.unwrap();
    assert_eq!(small.text().await.unwrap(), "ran");
    assert_eq!(calls(), before + 1);
}

/// `http.backlog` is the listen queue. A server not accepting yet (bound, not running)
/// queues backlog + 1 new connections (Linux's count) and drops the SYNs beyond them,
/// whose clients would only retry a second later; once it runs, the queued ones are
/// answered.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn the_configured_backlog_is_the_listen_queue() {
    let settings = HttpSettings { port: 0, backlog: 4, ..HttpSettings::default() };
    let ops = Ops { metrics: Metrics::new(), readiness: Readiness::default(), title: "test".into() };
    let server = HttpServer::bind(&settings, build_router(OpenApiRouter::new(), ops, &settings)).await.unwrap();
    let address = server.local_addr();
    let mut queued = Vec::new();
    for n in 0..=settings.backlog {
        let connected = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(address)).await;
        queued.push(connected.unwrap_or_else(|_| panic!("connection {n} was not queued")).unwrap());
    }
    let beyond: Vec<_> = (0..3).map(|_| tokio::spawn(tokio::time::timeout(Duration::from_millis(700), TcpStream::connect(address)))).collect();
    for attempt in beyond {
        assert!(attempt.await.unwrap().is_err(), "a connection beyond the backlog of {} was queued", settings.backlog);
    }
    let shutdown = CancellationToken::new();
    tokio::spawn(server.run(shutdown.clone()));
    for mut stream in queued {
        stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
    shutdown.cancel();
}
