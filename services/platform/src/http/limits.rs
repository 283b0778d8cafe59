//! `http.body_limit_bytes` for every request, and a connection that survives a refused
//! body. Each body is read whole (up to the limit) before any handler runs: a route that
//! reads no body would otherwise run with a huge one, and a handler that refuses before
//! reading (415, 401, a bad header) would leave the body unread, which makes hyper close
//! a kept-alive connection without saying so. An over-limit body is read and dropped up
//! to [`DRAIN_BYTES`] so the connection can carry the next request; beyond that the 413
//! says `Connection: close`.

use axum::{
    body::{Body, Bytes},
    extract::Request,
    http::{
        header::{CONNECTION, CONTENT_LENGTH, EXPECT},
        HeaderMap, HeaderValue, Version,
    },
    response::{IntoResponse, Response},
};
use futures_util::StreamExt;

use crate::error::{ApiError, ErrorCode};

/// The most of a refused body read only to keep its connection: reading costs the server
/// no more than a client sending that much in allowed bodies, and the request time-out
/// bounds how long it takes.
const DRAIN_BYTES: u64 = 8 * 1024 * 1024;

/// The request with its body read whole (at most `limit` bytes), or the answer that
/// refuses it.
pub(super) async fn whole_body(limit: usize, req: Request) -> Result<Request, Response> {
    let declared = declared_length(req.headers());
    if declared.is_none() && axum::body::HttpBody::is_end_stream(req.body()) {
        return Ok(req);
    }
    let drain = worth_draining(&req);
    if declared.is_some_and(|length| length > limit as u64) && (!drain || declared > Some(DRAIN_BYTES)) {
        return Err(closing(too_large(limit)));
    }
    let (parts, body) = req.into_parts();
    match read_whole(body, limit, drain).await {
        Read::Whole(bytes) => Ok(Request::from_parts(parts, Body::from(bytes))),
        Read::TooLarge { drained: true } => Err(too_large(limit)),
        Read::TooLarge { drained: false } => Err(closing(too_large(limit))),
        Read::Broken => {
            Err(closing(ApiError::new(ErrorCode::MalformedJson, "the request body could not be read").into_response()))
        }
    }
}

enum Read {
    Whole(Bytes),
    /// Over the limit; `drained` when all of it was read (the connection is reusable).
    TooLarge {
        drained: bool,
    },
    Broken,
}

/// Whether reading the rest of a refused body keeps the connection for another
/// request: one kept alive (the server speaks HTTP/1 only), whose client is not holding
/// the body back until told `100 Continue` (asking for it only to drop it wastes both
/// sides).
fn worth_draining(req: &Request) -> bool {
    let says = |name, token: &str| {
        req.headers()
            .get_all(name)
            .iter()
            .any(|v| v.to_str().is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token))))
    };
    let kept_alive = match req.version() {
        Version::HTTP_11 => !says(CONNECTION, "close"),
        Version::HTTP_10 => says(CONNECTION, "keep-alive"),
        _ => false,
    };
    kept_alive && !says(EXPECT, "100-continue")
}

/// The body, up to `limit` bytes; past it, when `drain`, the rest is read and dropped
/// up to [`DRAIN_BYTES`] in all.
async fn read_whole(body: Body, limit: usize, drain: bool) -> Read {
    let mut stream = body.into_data_stream();
    // A body that arrives in one chunk (most do) is kept as it is, without a copy.
    let mut first: Option<Bytes> = None;
    let mut more = Vec::new();
    let mut total: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else {
            return Read::Broken;
        };
        total += chunk.len() as u64;
        if total > DRAIN_BYTES || (total > limit as u64 && !drain) {
            return Read::TooLarge { drained: false };
        }
        if total <= limit as u64 {
            match first.take() {
                None if more.is_empty() => first = Some(chunk),
                held => {
                    if let Some(held) = held {
                        more.extend_from_slice(&held);
                    }
                    more.extend_from_slice(&chunk);
                }
            }
        }
    }
    if total > limit as u64 {
        Read::TooLarge { drained: true }
    } else {
        Read::Whole(first.unwrap_or_else(|| Bytes::from(more)))
    }
}

fn too_large(limit: usize) -> Response {
    ApiError::new(ErrorCode::PayloadTooLarge, format!("the request body is larger than the limit of {limit} bytes"))
        .into_response()
}

/// The answer, and the connection closed after it (hyper honours the header).
pub(super) fn closing(mut response: Response) -> Response {
    response.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(CONTENT_LENGTH)?.to_str().ok()?.trim().parse().ok()
}
