//! Every error that crosses the HTTP boundary is an RFC 9457 `application/problem+json`
//! document with a stable machine `code`. Codes are listed once, here, and documented
//! in `docs/errors.md` (a test keeps the two in step).

use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use utoipa::ToSchema;

macro_rules! error_codes {
    ($($variant:ident => ($status:ident, $title:literal)),+ $(,)?) => {
        /// Stable machine-readable error codes; clients may switch on them.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
        #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
        pub enum ErrorCode { $($variant),+ }

        impl ErrorCode {
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),+];

            pub fn status(self) -> StatusCode {
                match self { $(ErrorCode::$variant => StatusCode::$status),+ }
            }

            pub fn title(self) -> &'static str {
                match self { $(ErrorCode::$variant => $title),+ }
            }
        }
    };
}

error_codes! {
    // Request shape
    MalformedJson => (BAD_REQUEST, "The body is not valid JSON"),
    InvalidBody => (UNPROCESSABLE_ENTITY, "The body does not have the expected fields and types"),
    InvalidPathParameter => (BAD_REQUEST, "A path parameter is not valid"),
    InvalidQuery => (BAD_REQUEST, "A query parameter is not valid"),
    InvalidHeader => (BAD_REQUEST, "A header is missing or not valid"),
    UnsupportedMediaType => (UNSUPPORTED_MEDIA_TYPE, "The body must be application/json"),
    PayloadTooLarge => (PAYLOAD_TOO_LARGE, "The body is larger than allowed"),
    ValidationFailed => (UNPROCESSABLE_ENTITY, "Some fields are not valid"),
    InvalidCursor => (BAD_REQUEST, "The paging cursor is not valid"),
    NotFound => (NOT_FOUND, "No such resource"),
    MethodNotAllowed => (METHOD_NOT_ALLOWED, "The method is not allowed on this resource"),
    // Authentication and authorisation
    Unauthenticated => (UNAUTHORIZED, "An access token is required"),
    InvalidToken => (UNAUTHORIZED, "The access token is not valid"),
    TokenExpired => (UNAUTHORIZED, "The access token has expired"),
    TokenRevoked => (UNAUTHORIZED, "The session has been logged out"),
    Forbidden => (FORBIDDEN, "Your role may not do this"),
    InvalidCredentials => (UNAUTHORIZED, "E-mail or password is wrong"),
    TooManyAttempts => (TOO_MANY_REQUESTS, "Too many failed attempts; wait before trying again"),
    InvalidRefreshToken => (UNAUTHORIZED, "The refresh token is not valid"),
    RefreshTokenReused => (UNAUTHORIZED, "The refresh token was already used; the session has been revoked"),
    WrongCurrentPassword => (FORBIDDEN, "The current password is wrong"),
    // E-mail verification and accounts
    ResendTooSoon => (TOO_MANY_REQUESTS, "A code was sent recently; wait before asking again"),
    NoPendingVerification => (BAD_REQUEST, "No verification code is pending for this e-mail"),
    InvalidCode => (BAD_REQUEST, "The verification code is wrong"),
    VerificationLocked => (TOO_MANY_REQUESTS, "Too many wrong codes; ask for a new code"),
    EmailNotVerified => (FORBIDDEN, "The e-mail address has not been verified"),
    EmailTaken => (CONFLICT, "An account with this e-mail already exists"),
    UserNotFound => (NOT_FOUND, "No such user"),
    // Catalogue and cart
    ProductNotFound => (NOT_FOUND, "No such product"),
    CartItemNotFound => (NOT_FOUND, "The product is not in your cart"),
    CartEmpty => (UNPROCESSABLE_ENTITY, "The cart is empty"),
    ProductNotOnSale => (CONFLICT, "A product is not on sale"),
    // Sales, orders and payments
    IdempotencyKeyRequired => (BAD_REQUEST, "This request needs an Idempotency-Key header"),
    SaleNotFound => (NOT_FOUND, "No such sale"),
    SaleNotOpen => (CONFLICT, "The sale has not opened yet"),
    SaleClosed => (CONFLICT, "The sale has closed"),
    SoldOut => (CONFLICT, "Sold out"),
    SaleHalted => (CONFLICT, "The merchant has halted the sale"),
    InsufficientStock => (CONFLICT, "Fewer units are left than you asked for"),
    PurchaseLimit => (CONFLICT, "You have reached this sale's per-shopper limit"),
    OrderNotFound => (NOT_FOUND, "No such order"),
    OrderStateConflict => (CONFLICT, "The order's status does not allow this"),
    PaymentNotFound => (NOT_FOUND, "No payment is due for this order"),
    PaymentDeclined => (PAYMENT_REQUIRED, "The payment was declined"),
    PaymentClosed => (CONFLICT, "The payment can no longer be made (expired or cancelled)"),
    // FlashSale manifests (the one-process shop's operator API)
    FlashSaleNotFound => (NOT_FOUND, "No such FlashSale"),
    InvalidFlashSale => (UNPROCESSABLE_ENTITY, "The FlashSale manifest is not valid"),
    FlashSaleConflict => (CONFLICT, "The FlashSale cannot be changed now"),
    // Infrastructure
    RequestTimeout => (REQUEST_TIMEOUT, "The request took too long"),
    ServiceUnavailable => (SERVICE_UNAVAILABLE, "A dependency is unavailable; try again"),
    Internal => (INTERNAL_SERVER_ERROR, "Something went wrong on our side"),
}

impl ErrorCode {
    pub fn as_str(self) -> String {
        serde_json::to_value(self).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
    }
}

/// One invalid field of a request, for `VALIDATION_FAILED`.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// The problem document on the wire.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// URI naming the problem type; one per `code`.
    #[serde(rename = "type")]
    #[schema(example = "https://goodsmall.io/problems/sold-out")]
    pub type_uri: String,
    pub title: String,
    /// The HTTP status of the answer.
    #[schema(minimum = 400, maximum = 599)]
    pub status: u16,
    pub detail: String,
    /// What went wrong, for clients to switch on (docs/errors.md lists each).
    pub code: ErrorCode,
    /// Each invalid field; only with `VALIDATION_FAILED` and `INVALID_FLASH_SALE`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(required = false)]
    pub errors: Vec<FieldError>,
}

/// An error on its way to the client.
#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub detail: String,
    pub errors: Vec<FieldError>,
    pub retry_after_secs: Option<u64>,
}

/// Collects every field problem of a request before answering, so the client can fix
/// them all at once.
#[derive(Default)]
pub struct FieldErrors(Vec<FieldError>);

impl FieldErrors {
    pub fn check<T>(&mut self, field: &str, parsed: Result<T, String>) -> Option<T> {
        parsed.map_err(|message| self.0.push(FieldError { field: field.into(), message })).ok()
    }

    pub fn into_result(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::validation(self.0))
        }
    }
}

impl ApiError {
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self { code, detail: detail.into(), errors: Vec::new(), retry_after_secs: None }
    }

    pub fn validation(errors: Vec<FieldError>) -> Self {
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        let detail = format!("invalid fields: {}", fields.join(", "));
        Self { errors, ..Self::new(ErrorCode::ValidationFailed, detail) }
    }

    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs.max(1));
        self
    }

    /// An unexpected failure: logged in full, reported to the client without internals.
    pub fn internal(error: impl std::fmt::Display) -> Self {
        tracing::error!(error = %error, "internal error");
        Self::new(ErrorCode::Internal, "an unexpected error occurred; it has been logged")
    }

    pub fn status(&self) -> StatusCode {
        self.code.status()
    }

    pub fn to_problem(&self) -> Problem {
        let code = self.code.as_str();
        Problem {
            type_uri: format!("https://goodsmall.io/problems/{}", code.to_lowercase().replace('_', "-")),
            title: self.code.title().to_owned(),
            status: self.status().as_u16(),
            detail: self.detail.clone(),
            code: self.code,
            errors: self.errors.clone(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.detail)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.to_problem()).unwrap_or_default();
        let mut response = (self.status(), body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        // Every 503 is worth retrying, and says when: a second unless the cause knows better.
        let retry_after = self.retry_after_secs.or((self.code == ErrorCode::ServiceUnavailable).then_some(1));
        if let Some(secs) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        if crate::db::is_unavailable(&e) {
            tracing::warn!(error = %e, "database unavailable");
            ApiError::new(ErrorCode::ServiceUnavailable, "the database is unavailable").retry_after(1)
        } else {
            ApiError::internal(e)
        }
    }
}

impl From<crate::kv::KvError> for ApiError {
    fn from(e: crate::kv::KvError) -> Self {
        tracing::warn!(error = %e, "key-value store unavailable");
        ApiError::new(ErrorCode::ServiceUnavailable, "the cache/token store is unavailable")
    }
}

/// An unreachable dependency anywhere in the chain (Redis, the database) is a 503 the
/// client may retry, not a 500.
impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        for cause in e.chain() {
            if let Some(redis) = cause.downcast_ref::<redis::RedisError>() {
                if redis.is_io_error() || redis.is_connection_dropped() || redis.is_connection_refusal() || redis.is_timeout() {
                    tracing::warn!(error = %format!("{e:#}"), "Redis unavailable");
                    return ApiError::new(ErrorCode::ServiceUnavailable, "the stock store is unavailable");
                }
            }
            if cause.downcast_ref::<sqlx::Error>().is_some_and(crate::db::is_unavailable) {
                tracing::warn!(error = %format!("{e:#}"), "database unavailable");
                return ApiError::new(ErrorCode::ServiceUnavailable, "the database is unavailable").retry_after(1);
            }
        }
        ApiError::internal(format!("{e:#}"))
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialise_screaming_snake_case() {
        assert_eq!(ErrorCode::InvalidCredentials.as_str(), "INVALID_CREDENTIALS");
        assert_eq!(ErrorCode::MalformedJson.as_str(), "MALFORMED_JSON");
    }

    #[test]
    fn problem_has_rfc9457_members_and_retry_after() {
        let response = ApiError::new(ErrorCode::ResendTooSoon, "wait").retry_after(42).into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/problem+json");
        assert_eq!(response.headers()[header::RETRY_AFTER], "42");
        let problem = ApiError::new(ErrorCode::ResendTooSoon, "wait").to_problem();
        let json = serde_json::to_value(problem).unwrap();
        assert_eq!(json["code"], "RESEND_TOO_SOON");
        assert_eq!(json["status"], 429);
        assert_eq!(json["type"], "https://goodsmall.io/problems/resend-too-soon");
        assert!(json.get("errors").is_none());
    }

    #[test]
    fn every_service_unavailable_answer_says_when_to_retry() {
        let response = ApiError::new(ErrorCode::ServiceUnavailable, "down").into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        let response = ApiError::new(ErrorCode::ServiceUnavailable, "down").retry_after(5).into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "5");
        let redis_down = anyhow::Error::new(redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)));
        let response = ApiError::from(redis_down).into_response();
        assert_eq!((response.status(), &response.headers()[header::RETRY_AFTER]), (StatusCode::SERVICE_UNAVAILABLE, &HeaderValue::from(1)));
        assert!(ApiError::new(ErrorCode::SoldOut, "gone").into_response().headers().get(header::RETRY_AFTER).is_none());
    }

    #[test]
    fn only_internal_is_a_server_error_for_the_client_to_see() {
        for code in ErrorCode::ALL {
            let server_side = code.status().is_server_error();
            let expected = matches!(code, ErrorCode::Internal | ErrorCode::ServiceUnavailable);
            assert_eq!(server_side, expected, "{code:?}");
        }
    }

    #[test]
    fn every_code_is_documented() {
        let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/errors.md"))
            .expect("docs/errors.md exists");
        for code in ErrorCode::ALL {
            let needle = format!("`{}`", code.as_str());
            assert!(doc.contains(&needle), "docs/errors.md does not document {needle}");
        }
    }
}
