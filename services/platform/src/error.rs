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
    // A sale's waiting room
    NoWaitingRoom => (CONFLICT, "This sale has no waiting room; buy directly"),
    QueueNotOpen => (CONFLICT, "The sale's waiting room has not opened yet"),
    NotInQueue => (NOT_FOUND, "You have not joined this sale's waiting room"),
    AdmissionRequired => (FORBIDDEN, "This sale admits shoppers through its waiting room"),
    AdmissionExpired => (FORBIDDEN, "Your turn to buy has expired"),
    AdmissionInvalid => (FORBIDDEN, "The admission is not valid for you and this sale"),
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
    /// The code as clients see it (`SOLD_OUT`): its serde name, worked out once.
    pub fn as_str(self) -> &'static str {
        static NAMES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
        let names = NAMES.get_or_init(|| {
            ErrorCode::ALL
                .iter()
                .map(|c| serde_json::to_value(c).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default())
                .collect()
        });
        // `ALL` lists the variants in declaration order.
        &names[self as usize]
    }
}

/// A code equals its name as clients see it (`ErrorCode::SoldOut == "SOLD_OUT"`).
impl PartialEq<&str> for ErrorCode {
    fn eq(&self, name: &&str) -> bool {
        self.as_str() == *name
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
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

/// An error and each of its causes, outermost first, `: `-separated: how a typed error
/// is logged (`error = %chain(&e)`).
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(cause) = next {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        next = cause.source();
    }
    text
}

/// What caused an [`ApiError`]: any error, its own causes included.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An error on its way to the client. It keeps its cause (`source()`), which is logged
/// once, with its whole chain, when the answer is made ([`IntoResponse`]): an error a
/// handler maps and recovers from logs nothing. The client sees `code` and `detail`
/// only.
#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub detail: String,
    pub errors: Vec<FieldError>,
    pub retry_after_secs: Option<u64>,
    cause: Option<Cause>,
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
        Self { code, detail: detail.into(), errors: Vec::new(), retry_after_secs: None, cause: None }
    }

    /// Keeps `cause` as this error's `source()`, logged with the answer.
    pub fn caused_by(mut self, cause: impl Into<Cause>) -> Self {
        self.cause = Some(cause.into());
        self
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

    /// An unexpected failure: `500 INTERNAL`, reported to the client without internals;
    /// `cause` (an error, or a message) is logged in full with the answer.
    pub fn internal(cause: impl Into<Cause>) -> Self {
        Self::new(ErrorCode::Internal, "an unexpected error occurred; it has been logged").caused_by(cause)
    }

    /// A dependency that does not answer (`what`: "the database", "the stock store"):
    /// `503 SERVICE_UNAVAILABLE`, retried after a second; `cause` is logged with the answer.
    pub fn unavailable(what: &str, cause: impl Into<Cause>) -> Self {
        Self::new(ErrorCode::ServiceUnavailable, format!("{what} is unavailable")).retry_after(1).caused_by(cause)
    }

    /// The cause and each of its causes, outermost first, `: `-separated.
    pub fn cause_chain(&self) -> Option<String> {
        std::error::Error::source(self).map(chain)
    }

    /// Logs the answer's cause once: a server error at `error` (500) or `warn` (503),
    /// a client error's cause (when it has one) at `debug`.
    fn log(&self) {
        let status = self.status();
        let chain = self.cause_chain();
        match (self.code, chain) {
            (ErrorCode::Internal, chain) => {
                let error = chain.as_deref().unwrap_or("(no cause)");
                tracing::error!(code = %self.code, detail = %self.detail, error, "internal error")
            }
            (_, Some(chain)) if status.is_server_error() => {
                tracing::warn!(code = %self.code, detail = %self.detail, error = %chain, "dependency unavailable")
            }
            (_, Some(chain)) => {
                tracing::debug!(code = %self.code, detail = %self.detail, error = %chain, "request refused")
            }
            (_, None) => {}
        }
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

impl std::error::Error for ApiError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause.as_deref().map(|cause| cause as &(dyn std::error::Error + 'static))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.log();
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

/// A failure that may be a dependency not answering: each domain error says so by its
/// variants, and [`ApiError::failure`] answers it.
pub trait Unreachable {
    /// The dependency ("the database", "the stock store") that did not answer, when
    /// that is the failure: a 503 the client may retry.
    fn unreachable(&self) -> Option<&'static str>;
}

impl Unreachable for sqlx::Error {
    fn unreachable(&self) -> Option<&'static str> {
        crate::db::is_unavailable(self).then_some("the database")
    }
}

impl Unreachable for crate::kv::KvError {
    fn unreachable(&self) -> Option<&'static str> {
        match self {
            crate::kv::KvError::Redis(_) => Some("the cache/token store"),
            crate::kv::KvError::NotACounter { .. } => None,
        }
    }
}

impl ApiError {
    /// A failure the client did not cause: `503 SERVICE_UNAVAILABLE`, retried after a
    /// second, when a dependency did not answer; else `500 INTERNAL`. The error is kept
    /// as the answer's cause and logged, with its whole chain, when the answer is made.
    pub fn failure<E>(cause: E) -> Self
    where
        E: Unreachable + std::error::Error + Send + Sync + 'static,
    {
        match cause.unreachable() {
            Some(what) => ApiError::unavailable(what, cause),
            None => ApiError::internal(cause),
        }
    }
}

/// An unreachable database is a 503 the client may retry; any other database error a 500.
impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        ApiError::failure(e)
    }
}

impl From<crate::kv::KvError> for ApiError {
    fn from(e: crate::kv::KvError) -> Self {
        ApiError::failure(e)
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
        let redis_down = redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        let response = ApiError::from(crate::kv::KvError::from(redis_down)).into_response();
        assert_eq!(
            (response.status(), &response.headers()[header::RETRY_AFTER]),
            (StatusCode::SERVICE_UNAVAILABLE, &HeaderValue::from(1))
        );
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

    /// A cause with a cause of its own.
    #[derive(Debug, thiserror::Error)]
    #[error("reading sale 7")]
    struct Outer(#[source] std::io::Error);

    fn outer() -> Outer {
        Outer(std::io::Error::other("disk on fire"))
    }

    #[test]
    fn the_cause_is_the_source_and_stays_out_of_the_answer() {
        let error = ApiError::internal(outer());
        let source = std::error::Error::source(&error).expect("the cause is kept");
        assert!(source.downcast_ref::<Outer>().is_some(), "{source}");
        assert_eq!(error.cause_chain().as_deref(), Some("reading sale 7: disk on fire"));
        let problem = serde_json::to_value(error.to_problem()).unwrap();
        assert!(!problem.to_string().contains("disk on fire"), "{problem}");
        assert_eq!(ApiError::new(ErrorCode::SoldOut, "gone").cause_chain(), None);
        let down = ApiError::from(sqlx::Error::PoolTimedOut);
        assert_eq!((down.code, down.retry_after_secs), (ErrorCode::ServiceUnavailable, Some(1)));
        assert!(std::error::Error::source(&down)
            .is_some_and(|e| matches!(e.downcast_ref::<sqlx::Error>(), Some(sqlx::Error::PoolTimedOut))));
    }

    /// Collects what is logged while `f` runs.
    fn logged(f: impl FnOnce()) -> String {
        #[derive(Clone, Default)]
        struct Lines(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Lines {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        text
    }

    #[test]
    fn the_whole_chain_is_logged_once_when_the_answer_is_made_not_before() {
        let recovered = logged(|| {
            let error = ApiError::internal(outer());
            let _mapped_and_recovered = matches!(error.code, ErrorCode::Internal);
        });
        assert_eq!(recovered, "", "an error that never becomes an answer logs nothing");
        let answered = logged(|| {
            drop(ApiError::internal(outer()).into_response());
        });
        assert_eq!(answered.matches("reading sale 7: disk on fire").count(), 1, "{answered}");
        assert!(answered.contains("ERROR"), "{answered}");
        let unavailable = logged(|| {
            drop(ApiError::from(sqlx::Error::PoolTimedOut).into_response());
        });
        assert!(unavailable.contains("WARN") && unavailable.matches("pool timed out").count() == 1, "{unavailable}");
        assert_eq!(
            logged(|| drop(ApiError::new(ErrorCode::SoldOut, "gone").into_response())),
            "",
            "a refusal without a cause logs nothing"
        );
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
