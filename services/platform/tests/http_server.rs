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
    http::{build_router, ApiDocument, HttpServer, Ops, Readiness},
    metrics::Metrics,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use tokio_util::sync::CancellationToken;
use utoipa_axum::router::OpenApiRouter;

/// Counts the `/slow` requests that reached their handler.
static SLOW_STARTED: AtomicUsize = AtomicUsize::new(0);
async fn slow() -> &'static str {
    SLOW_STARTED.fetch_add(1, Ordering::SeqCst);
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
    let ops = Ops {
        metrics: Metrics::new(),
        readiness: Readiness::default(),
        document: ApiDocument::Routes { title: "test".into() },
    };
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
    let before = SLOW_STARTED.load(Ordering::SeqCst);
    let in_flight = tokio::spawn(reqwest::get(format!("{base}/slow")));
    let started = async || (SLOW_STARTED.load(Ordering::SeqCst) > before).then_some(());
    goodsmall_testkit::eventually("the request to reach its handler", Duration::from_secs(10), started).await;
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
        (
            client.post(format!("{base}/echo")).header("content-type", "application/json").body("x".repeat(4096)),
            413,
            "PAYLOAD_TOO_LARGE",
        ),
        (
            client.post(format!("{base}/echo")).header("content-type", "application/json").body("{oops"),
            400,
            "MALFORMED_JSON",
        ),
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
    let declared = client
        .post(format!("{base}/no-body"))
        .header("content-type", "application/json")
        .body("x".repeat(4096))
        .send()
        .await
        .unwrap();
    assert_eq!(declared.status(), 413);
    assert_eq!(declared.headers()["content-type"], "application/problem+json");
    assert_eq!(declared.json::<serde_json::Value>().await.unwrap()["code"], "PAYLOAD_TOO_LARGE");

    let chunk = format!("{:x}\r\n{}\r\n", 1024, "y".repeat(1024));
    let request = format!(
        "POST /no-body HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{}0\r\n\r\n",
        chunk.repeat(4)
    );
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
    let ops = Ops {
        metrics: Metrics::new(),
        readiness: Readiness::default(),
        document: ApiDocument::Routes { title: "test".into() },
    };
    let server = HttpServer::bind(&settings, build_router(OpenApiRouter::new(), ops, &settings)).await.unwrap();
    let address = server.local_addr();
    let mut queued = Vec::new();
    for n in 0..=settings.backlog {
        let connected = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(address)).await;
        queued.push(connected.unwrap_or_else(|_| panic!("connection {n} was not queued")).unwrap());
    }
    let beyond: Vec<_> = (0..3)
        .map(|_| tokio::spawn(tokio::time::timeout(Duration::from_millis(700), TcpStream::connect(address))))
        .collect();
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

/// One kept-alive HTTP/1.1 connection, spoken to by hand: a request, then its answer
/// read exactly (by its `Content-Length`), so the next request can follow on it.
struct KeptAlive(tokio::io::BufReader<TcpStream>);

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

impl KeptAlive {
    async fn open(base: &str) -> Self {
        let stream = TcpStream::connect(base.trim_start_matches("http://")).await.unwrap();
        stream.set_nodelay(true).unwrap();
        Self(tokio::io::BufReader::new(stream))
    }

    async fn write(&mut self, bytes: &[u8]) {
        self.0.get_mut().write_all(bytes).await.expect("the server takes the request");
    }

    async fn answer(&mut self) -> Answer {
        use tokio::io::AsyncBufReadExt;
        let mut line = String::new();
        self.0.read_line(&mut line).await.unwrap();
        assert!(line.starts_with("HTTP/1.1 "), "no answer on the kept-alive connection: {line:?}");
        let status = line[9..12].parse().unwrap();
        let mut headers = Vec::new();
        loop {
            line.clear();
            self.0.read_line(&mut line).await.unwrap();
            let Some((name, value)) = line.trim_end().split_once(':') else {
                break;
            };
            headers.push((name.to_owned(), value.trim().to_owned()));
        }
        let mut answer = Answer { status, headers, body: String::new() };
        let length: usize = answer.header("content-length").expect("a sized answer").parse().unwrap();
        let mut body = vec![0; length];
        self.0.read_exact(&mut body).await.unwrap();
        answer.body = String::from_utf8(body).unwrap();
        answer
    }

    /// A valid request on this connection is answered.
    async fn still_answers(&mut self) {
        self.write(&request("/echo", "application/json", br#"{"next":1}"#)).await;
        let answer = self.answer().await;
        assert_eq!((answer.status, answer.body.as_str()), (200, r#"{"next":1}"#));
    }
}

fn head(path: &str, content_type: &str, length: usize) -> Vec<u8> {
    format!("POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: {content_type}\r\nContent-Length: {length}\r\n\r\n")
        .into_bytes()
}

fn request(path: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    [head(path, content_type, body.len()), body.to_vec()].concat()
}

/// A body the server refuses (too large, the wrong media type) does not cost the client
/// its kept-alive connection: the next request on it is answered.
#[tokio::test]
async fn a_refused_body_leaves_the_kept_alive_connection_usable() {
    let (base, _shutdown, _running) = start(settings()).await;
    let mut conn = KeptAlive::open(&base).await;
    for size in [4_096, 70_000, 2_000_000] {
        conn.write(&request("/echo", "application/json", &vec![b'x'; size])).await;
        let answer = conn.answer().await;
        assert_eq!(answer.status, 413, "{size} bytes: {}", answer.body);
        assert_eq!(answer.header("connection"), None, "{size} bytes: the connection stays open");
        conn.still_answers().await;
    }
    let chunk = format!("{:x}\r\n{}\r\n", 1024, "y".repeat(1024));
    conn.write(
        format!(
            "POST /no-body HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n{}0\r\n\r\n",
            chunk.repeat(8)
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(conn.answer().await.status, 413, "chunked");
    conn.still_answers().await;

    // Headers and body in separate writes, as Python's http.client sends them: the
    // server may answer before the body arrives.
    let body = br#"{"a":1}"#;
    conn.write(&head("/echo", "text/plain", body.len())).await;
    let early = tokio::time::timeout(Duration::from_millis(300), conn.answer()).await.ok();
    conn.write(body).await;
    let answer = match early {
        Some(answer) => answer,
        None => conn.answer().await,
    };
    assert_eq!(answer.status, 415, "{}", answer.body);
    conn.still_answers().await;
}

/// A body beyond what is worth reading to keep the connection, one the client holds
/// back until told to continue, or one on a connection the client closes anyway, is
/// refused unread, and the answer says the connection closes.
#[tokio::test]
async fn a_body_not_worth_reading_is_refused_with_connection_close() {
    let (base, _shutdown, _running) = start(settings()).await;
    let declaring = |header: &str| {
        format!(
            "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: \
            4096\r\n{header}\r\n\r\n"
        )
    };
    let requests = [
        head("/echo", "application/json", 64 * 1024 * 1024),
        declaring("Expect: 100-continue").into_bytes(),
        declaring("Connection: close").into_bytes(),
    ];
    for request in requests {
        let mut conn = KeptAlive::open(&base).await;
        conn.write(&request).await;
        let answer = conn.answer().await;
        assert_eq!(answer.status, 413, "{}", String::from_utf8_lossy(&request));
        assert_eq!(answer.header("connection"), Some("close"));
        let mut rest = Vec::new();
        conn.0.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty(), "the server closed the connection");
    }
}

/// A body still arriving when the request time-out ends it: the 408 says the connection
/// closes (the rest of the body would otherwise be read as the next request).
#[tokio::test]
async fn a_timed_out_body_is_answered_with_connection_close() {
    let (base, _shutdown, _running) = start(settings()).await;
    let mut conn = KeptAlive::open(&base).await;
    conn.write(&head("/echo", "application/json", 100)).await;
    conn.write(b"{\"partial\":").await;
    let answer = conn.answer().await;
    assert_eq!(answer.status, 408, "{}", answer.body);
    assert_eq!(answer.header("connection"), Some("close"));
}
