//! `burst`: the cold connections of a drop's opening. N brand-new TCP connections are
//! started in the same instant (every socket is made first, then all the non-blocking
//! connects go out in one pass of the runtime), each sends `GET /healthz` and waits
//! for the status line. It reports the connect+answer time of each (p50, p99, max),
//! how many got no answer within the timeout, and by how much the kernel's
//! `TcpExt ListenOverflows` counter (/proc/net/netstat: SYNs dropped because a listen
//! queue was full, for the whole network namespace) grew meanwhile. A server whose
//! listen backlog is smaller than the burst shows overflows and a p99 of a second or
//! more: the dropped SYNs are only retried by the client's TCP after 1 s, then 3 s.

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context;
use clap::Args;
use serde::{Deserialize, Serialize};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpSocket,
    sync::watch,
    time::Instant,
};

#[derive(Args)]
pub struct BurstArgs {
    #[arg(long, env = "BASE_URL", default_value = "http://127.0.0.1:8080")]
    pub base_url: String,
    /// New connections opened at once (each needs a file descriptor: see `ulimit -n`).
    #[arg(long, default_value_t = 1000)]
    pub connections: usize,
    /// A connection not answered within this is counted as unanswered.
    #[arg(long, default_value_t = 5000)]
    pub timeout_ms: u64,
    /// Exit 1 when any connection was not answered.
    #[arg(long)]
    pub require_all: bool,
    /// Where the figures go (JSON).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// What one burst measured.
#[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct BurstFigures {
    pub connections: usize,
    /// Got an HTTP status line back.
    pub answered: usize,
    /// Of those, 2xx.
    pub ok: usize,
    /// No status line within the timeout (connect or answer), or a connection error.
    pub unanswered: usize,
    /// Connect-to-status-line times of the answered connections.
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Growth of `TcpExt ListenOverflows` during the burst; `None` without /proc/net/netstat.
    pub listen_overflows: Option<u64>,
}

enum Outcome {
    Answered { status: u16, took: Duration },
    Unanswered,
}

pub async fn run(args: BurstArgs) -> anyhow::Result<bool> {
    let url = reqwest::Url::parse(&args.base_url).with_context(|| format!("{} is not a URL", args.base_url))?;
    let host = url.host_str().context("the base URL has no host")?.to_owned();
    let port = url.port_or_known_default().context("the base URL has no port")?;
    let address = tokio::net::lookup_host((host.as_str(), port))
        .await?
        .next()
        .with_context(|| format!("{host} resolves to no address"))?;
    let figures = burst(address, &host, args.connections, Duration::from_millis(args.timeout_ms)).await?;
    println!(
        "burst: {} new connections at once to {address}: {} answered ({} 2xx), {} not answered within {} ms; \
         connect+answer p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; ListenOverflows {}",
        figures.connections,
        figures.answered,
        figures.ok,
        figures.unanswered,
        args.timeout_ms,
        figures.p50_ms,
        figures.p99_ms,
        figures.max_ms,
        figures.listen_overflows.map_or("unknown (no /proc/net/netstat)".to_owned(), |n| format!("+{n}")),
    );
    if let Some(out) = &args.out {
        std::fs::write(out, serde_json::to_vec_pretty(&figures)?)
            .with_context(|| format!("writing {}", out.display()))?;
    }
    Ok(!args.require_all || figures.unanswered == 0)
}

/// Opens `connections` connections to `address` at once and asks each for `/healthz`.
pub async fn burst(
    address: SocketAddr,
    host: &str,
    connections: usize,
    timeout: Duration,
) -> anyhow::Result<BurstFigures> {
    let request: Arc<[u8]> =
        format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").into_bytes().into();
    // Every socket exists before the first connect goes out.
    let mut sockets = Vec::with_capacity(connections);
    for made in 0..connections {
        let socket = if address.is_ipv4() { TcpSocket::new_v4() } else { TcpSocket::new_v6() };
        sockets.push(socket.with_context(|| format!("socket {} of {connections} (raise `ulimit -n`)", made + 1))?);
    }
    let (go, ready) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    for socket in sockets {
        let (mut ready, request) = (ready.clone(), request.clone());
        tasks.spawn(async move {
            let _ = ready.wait_for(|go| *go).await;
            let started = Instant::now();
            match tokio::time::timeout(timeout, exchange(socket, address, &request)).await {
                Ok(Ok(status)) => Outcome::Answered { status, took: started.elapsed() },
                _ => Outcome::Unanswered,
            }
        });
    }
    // Let every task reach the starting line, then start them all.
    tokio::task::yield_now().await;
    let overflows_before = listen_overflows();
    go.send_replace(true);
    let mut figures = BurstFigures { connections, ..BurstFigures::default() };
    let mut times = Vec::with_capacity(connections);
    while let Some(outcome) = tasks.join_next().await {
        match outcome? {
            Outcome::Answered { status, took } => {
                figures.answered += 1;
                figures.ok += usize::from((200..300).contains(&status));
                times.push(took.as_secs_f64() * 1000.0);
            }
            Outcome::Unanswered => figures.unanswered += 1,
        }
    }
    figures.listen_overflows =
        overflows_before.zip(listen_overflows()).map(|(before, after)| after.saturating_sub(before));
    times.sort_by(f64::total_cmp);
    let quantile = |q: f64| if times.is_empty() { 0.0 } else { times[((times.len() - 1) as f64 * q).round() as usize] };
    (figures.p50_ms, figures.p99_ms, figures.max_ms) = (quantile(0.5), quantile(0.99), quantile(1.0));
    Ok(figures)
}

/// Connects, sends the request and reads up to the end of the status line.
async fn exchange(socket: TcpSocket, address: SocketAddr, request: &[u8]) -> std::io::Result<u16> {
    let mut stream = socket.connect(address).await?;
    stream.write_all(request).await?;
    let mut head = Vec::with_capacity(64);
    let mut buf = [0u8; 256];
    while !head.windows(2).any(|w| w == b"\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 || head.len() > 4096 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        head.extend_from_slice(&buf[..n]);
    }
    // "HTTP/1.1 200 OK"
    let line = String::from_utf8_lossy(&head);
    line.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::ErrorKind::InvalidData.into())
}

/// `TcpExt ListenOverflows` from /proc/net/netstat (a header line of names, then a line
/// of values).
fn listen_overflows() -> Option<u64> {
    parse_listen_overflows(&std::fs::read_to_string("/proc/net/netstat").ok()?)
}

fn parse_listen_overflows(netstat: &str) -> Option<u64> {
    let mut lines = netstat.lines().filter(|l| l.starts_with("TcpExt:"));
    let (names, values) = (lines.next()?, lines.next()?);
    let at = names.split_whitespace().position(|n| n == "ListenOverflows")?;
    values.split_whitespace().nth(at)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use axum::{routing::get, Router};

    use super::*;

    fn listener(backlog: u32) -> tokio::net::TcpListener {
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        socket.listen(backlog).unwrap()
    }

    #[tokio::test]
    async fn every_connection_of_a_burst_is_answered_by_a_server_that_queues_them() {
        let listener = listener(1024);
        let address = listener.local_addr().unwrap();
        tokio::spawn(
            async move { axum::serve(listener, Router::new().route("/healthz", get(|| async { "ok" }))).await },
        );
        let figures = burst(address, "127.0.0.1", 200, Duration::from_secs(10)).await.unwrap();
        assert_eq!(
            (figures.connections, figures.answered, figures.ok, figures.unanswered),
            (200, 200, 200, 0),
            "{figures:?}"
        );
        assert!(
            0.0 < figures.p50_ms && figures.p50_ms <= figures.p99_ms && figures.p99_ms <= figures.max_ms,
            "{figures:?}"
        );
    }

    #[tokio::test]
    async fn a_server_that_does_not_accept_leaves_the_burst_unanswered_and_the_kernel_counts_the_overflow() {
        // Listening, never accepting, with room for two queued connections.
        let listener = listener(1);
        let address = listener.local_addr().unwrap();
        let figures = burst(address, "127.0.0.1", 20, Duration::from_millis(300)).await.unwrap();
        assert_eq!((figures.answered, figures.unanswered), (0, 20), "{figures:?}");
        if let Some(overflows) = figures.listen_overflows {
            assert!(overflows >= 1, "the full queue dropped SYNs: {figures:?}");
        }
        drop(listener);
    }

    #[test]
    fn listen_overflows_are_read_from_the_tcpext_lines() {
        let netstat =
            "TcpExt: SyncookiesSent ListenOverflows ListenDrops\nTcpExt: 0 42 43\nIpExt: InNoRoutes\nIpExt: 0\n";
        assert_eq!(parse_listen_overflows(netstat), Some(42));
        assert_eq!(parse_listen_overflows("IpExt: A\nIpExt: 1\n"), None);
    }
}
