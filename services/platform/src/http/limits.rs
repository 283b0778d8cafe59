//! `http.body_limit_bytes` for every request. The extractors that read a body enforce
//! it as they read; a route that reads no body would never notice a huge one and run
//! anyway, so this middleware refuses an oversized body before any handler runs.

use axum::{
    body::Body,
    extract::Request,
    http::{header::CONTENT_LENGTH, HeaderMap},
    middleware::Next,
    response::{IntoResponse, Response},
};
use futures_util::StreamExt;

use crate::error::{ApiError, ErrorCode};

fn too_large(limit: usize) -> Response {
    ApiError::new(ErrorCode::PayloadTooLarge, format!("the request body is larger than the limit of {limit} bytes")).into_response()
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(CONTENT_LENGTH)?.to_str().ok()?.trim().parse().ok()
}

pub async fn limit_body(limit: usize, req: Request, next: Next) -> Response {
    if let Some(length) = declared_length(req.headers()) {
        // A declared length is enforced by the connection: the body cannot exceed it.
        return if length > limit as u64 { too_large(limit) } else { next.run(req).await };
    }
    if axum::body::HttpBody::is_end_stream(req.body()) {
        return next.run(req).await;
    }
    // No length given (chunked): read it here, up to the limit, and hand it on.
    let (parts, body) = req.into_parts();
    let mut stream = body.into_data_stream();
    let mut read = Vec::new();
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else {
            return ApiError::new(ErrorCode::MalformedJson, "the request body could not be read").into_response();
        };
        if read.len() + chunk.len() > limit {
            return too_large(limit);
        }
        read.extend_from_slice(&chunk);
    }
    next.run(Request::from_parts(parts, Body::from(read))).await
}
