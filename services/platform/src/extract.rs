//! Drop-in replacements for axum's `Json`, `Path` and `Query` extractors whose
//! rejections are problem documents with stable codes instead of plain text.

use axum::{
    body::Bytes,
    extract::{
        rejection::{PathRejection, QueryRejection},
        FromRequest, FromRequestParts, Request,
    },
    http::{header::CONTENT_TYPE, request::Parts, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use serde::{de::DeserializeOwned, Serialize};

use crate::error::{ApiError, ErrorCode};

/// JSON body in, JSON body out. Every request body of this API is a JSON object, and
/// every route reads it through here, so one rule holds everywhere:
/// - not `Content-Type: application/json` (or `…+json`): 415 `UNSUPPORTED_MEDIA_TYPE`;
/// - over `http.body_limit_bytes`: 413 `PAYLOAD_TOO_LARGE`;
/// - not JSON at all (syntax, truncated, trailing data, empty): 400 `MALFORMED_JSON`;
/// - JSON of the wrong shape (not an object, a missing, mistyped or unknown field):
///   422 `INVALID_BODY`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !json_content_type(req.headers()) {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "send the body with `Content-Type: application/json`",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|r| {
            if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(ErrorCode::PayloadTooLarge, "the request body is larger than the limit")
            } else {
                ApiError::new(ErrorCode::MalformedJson, r.body_text())
            }
        })?;
        parse_object(&bytes).map(Json)
    }
}

/// The body as `T`, or the problem. Syntax is checked over the whole body first:
/// serde stops at the first field it cannot use, so a body malformed further on would
/// otherwise be `INVALID_BODY` on one route and `MALFORMED_JSON` on another. Then the
/// shape: serde would read a struct from an array of its fields in order (`[90, 2]` as
/// `{"product_id": 90, "quantity": 2}`), so anything but an object is refused.
fn parse_object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
        return Err(ApiError::new(ErrorCode::MalformedJson, format!("the body is not valid JSON: {e}")));
    }
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::new(ErrorCode::InvalidBody, "the body must be a JSON object"));
    }
    axum::Json::<T>::from_bytes(bytes)
        .map(|axum::Json(value)| value)
        .map_err(|rejection| ApiError::new(ErrorCode::InvalidBody, rejection.body_text()))
}

/// `application/json` or a `+json` type, parameters (`; charset=utf-8`) allowed.
fn json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else { return false };
    let essence = value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// Path parameters; a value of the wrong type (e.g. `/products/abc`) is a 400.
#[derive(Debug)]
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| Path(v))
            .map_err(|r: PathRejection| ApiError::new(ErrorCode::InvalidPathParameter, r.body_text()))
    }
}

/// Query string parameters.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(v)| Query(v))
            .map_err(|r: QueryRejection| ApiError::new(ErrorCode::InvalidQuery, r.body_text()))
    }
}

/// An instant as a client may send it: in RFC 3339's range of years, 0000 to 9999, the
/// `date-time` the OpenAPI document promises. chrono also reads years of five or more
/// digits with a sign (`+262142-01-01T00:00:00Z`) and would write them back so, which no
/// `date-time` reader accepts; such an instant is a field error.
pub fn rfc3339_instant(at: chrono::DateTime<chrono::Utc>) -> Result<chrono::DateTime<chrono::Utc>, String> {
    use chrono::Datelike;
    if (0..=9999).contains(&at.year()) {
        Ok(at)
    } else {
        Err("must be an RFC 3339 date-time with a four-digit year (0000 to 9999)".into())
    }
}

/// The `Idempotency-Key` header, required: 1 to 100 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() || s.len() > 100 || !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("the Idempotency-Key must be 1 to 100 visible ASCII characters".into());
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let value = parts.headers.get("idempotency-key").ok_or_else(|| {
            ApiError::new(
                ErrorCode::IdempotencyKeyRequired,
                "send an `Idempotency-Key` header (e.g. a UUID) and reuse it when retrying",
            )
        })?;
        let text =
            value.to_str().map_err(|_| ApiError::new(ErrorCode::InvalidHeader, "the Idempotency-Key is not ASCII"))?;
        Self::parse(text).map_err(|e| ApiError::new(ErrorCode::InvalidHeader, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Line {
        product_id: i64,
        quantity: i64,
    }

    fn code(body: &str) -> Option<ErrorCode> {
        parse_object::<Line>(body.as_bytes()).err().map(|e| e.code)
    }

    #[test]
    fn one_rule_for_every_body() {
        assert_eq!(
            parse_object::<Line>(br#" {"product_id": 90, "quantity": 2} "#).unwrap(),
            Line { product_id: 90, quantity: 2 }
        );
        // Malformed after a field that is already wrong (or missing) is still malformed.
        for malformed in [
            "{,}",
            "",
            "   ",
            r#"{"product_id": 1"#,
            r#"{"product_id": 1, "quantity": 2} x"#,
            "[90,",
            "nul",
            "{'a': 1}",
            r#"{"quantity": 1} trailing"#,
            r#"{"product_id": "x", ,}"#,
            r#"{"other": 1, "product_id": }"#,
        ] {
            assert_eq!(code(malformed), Some(ErrorCode::MalformedJson), "{malformed:?}");
        }
        for wrong_shape in [
            "[90,2]",
            "[]",
            "null",
            "7",
            r#""text""#,
            r#"{"product_id": "x", "quantity": 2}"#,
            r#"{"product_id": 1}"#,
            r#"{"product_id": 1, "quantity": 2, "price": 1}"#,
        ] {
            assert_eq!(code(wrong_shape), Some(ErrorCode::InvalidBody), "{wrong_shape:?}");
        }
    }

    #[test]
    fn instants_stay_within_rfc3339_years() {
        let at = |s: &str| s.parse::<chrono::DateTime<chrono::Utc>>().unwrap();
        for fine in ["0000-01-01T00:00:00Z", "2026-12-01T10:00:00+09:00", "9999-12-31T23:59:59.999Z"] {
            assert_eq!(rfc3339_instant(at(fine)), Ok(at(fine)), "{fine}");
        }
        for beyond in
            ["+10000-01-01T00:00:00Z", "+262142-12-31T23:59:59Z", "-0001-12-31T23:59:59Z", "-262143-01-01T00:00:00Z"]
        {
            assert!(rfc3339_instant(at(beyond)).unwrap_err().contains("four-digit year"), "{beyond}");
        }
    }

    #[test]
    fn json_media_types() {
        let with = |value: &str| {
            let mut h = HeaderMap::new();
            h.insert(CONTENT_TYPE, value.parse().unwrap());
            json_content_type(&h)
        };
        assert!(
            with("application/json") && with("Application/JSON; charset=utf-8") && with("application/merge-patch+json")
        );
        assert!(!with("text/plain") && !with("application/jsonx") && !with("text/json"));
        assert!(!json_content_type(&HeaderMap::new()));
    }
}
