//! Thin HTTP handlers.

use axum::{extract::State, http::StatusCode, response::IntoResponse};
use goodsmall_platform::{
    auth::AuthUser,
    error::{ApiError, ApiResult, ErrorCode, Problem},
    extract::{Json, Path},
};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    opening::{self, Lookup},
    payments::{Payment, PaymentError, PaymentStatus},
    state::PaymentState,
};

/// The payments store's errors' answer: a database that does not answer is a 503 the
/// client may retry, anything else (a row this release cannot read, a provider that
/// failed) a 500, the error kept as the answer's cause.
impl From<PaymentError> for ApiError {
    fn from(e: PaymentError) -> Self {
        ApiError::failure(e)
    }
}

pub fn router(state: PaymentState) -> OpenApiRouter {
    routes().with_state(state)
}

/// This service's part of the public API document (docs/openapi.json).
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().into_openapi()
}

fn routes() -> OpenApiRouter<PaymentState> {
    OpenApiRouter::new().routes(routes!(detail, pay))
}

/// The caller's payment for the order; that of an order made a moment ago is waited
/// for ([`opening`]), so a client may use the 202's `payment_url` at once.
async fn owned(state: &PaymentState, user: &AuthUser, order_id: &str) -> ApiResult<Payment> {
    match opening::find(&state.payments, order_id).await? {
        Lookup::Found(payment) if payment.user_id == user.user_id => Ok(payment),
        Lookup::Found(_) | Lookup::Missing => {
            Err(ApiError::new(ErrorCode::PaymentNotFound, format!("no payment is due for order {order_id}")))
        }
        Lookup::Opening => Err(ApiError::new(
            ErrorCode::ServiceUnavailable,
            format!("the payment of order {order_id} has not opened within {}s; retry", opening::PATIENCE.as_secs()),
        )
        .retry_after(1)),
    }
}

/// Its 503, in the document.
const NOT_OPEN_YET: &str =
    "SERVICE_UNAVAILABLE: the payment of an order made in the last minute has not opened yet (the payment service is \
        behind); retry after `Retry-After`";

/// The payment of one of your orders, from the moment its purchase is answered.
#[utoipa::path(get, path = "/api/payments/{order_id}", tag = "payments", security(("bearer" = [])),
    params(("order_id" = String, Path)),
    responses((status = 200, body = Payment), (status = 404, body = Problem, description = "PAYMENT_NOT_FOUND"),
              (status = 503, body = Problem, description = NOT_OPEN_YET)))]
pub async fn detail(
    State(state): State<PaymentState>,
    user: AuthUser,
    Path(order_id): Path<String>,
) -> ApiResult<Json<Payment>> {
    Ok(Json(owned(&state, &user, &order_id).await?))
}

/// Pay for an order, also at once after its purchase is answered.
///
/// Safe to retry: an order has one payment, so the order is the idempotency key and no
/// `Idempotency-Key` header is needed (one sent is ignored). The money is taken at most
/// once, and paying again answers with the payment's outcome.
#[utoipa::path(post, path = "/api/payments/{order_id}", tag = "payments", security(("bearer" = [])),
    params(("order_id" = String, Path)),
    responses((status = 200, body = Payment), (status = 402, body = Problem, description = "PAYMENT_DECLINED"),
              (status = 404, body = Problem, description = "PAYMENT_NOT_FOUND"), (status = 409, body = Problem,
                  description = "PAYMENT_CLOSED"),
              (status = 503, body = Problem, description = NOT_OPEN_YET)))]
pub async fn pay(
    State(state): State<PaymentState>,
    user: AuthUser,
    Path(order_id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let payment = owned(&state, &user, &order_id).await?;
    let payment = state.payments.pay(payment).await?;
    match payment.status {
        PaymentStatus::Succeeded => Ok((StatusCode::OK, Json(payment))),
        PaymentStatus::Failed => Err(ApiError::new(
            ErrorCode::PaymentDeclined,
            format!(
                "{}; the order has failed and its stock is released",
                payment.reason.unwrap_or_else(|| "declined".into())
            ),
        )),
        PaymentStatus::Pending => Err(ApiError::new(
            ErrorCode::PaymentClosed,
            "the payment deadline has passed; the order is being cancelled",
        )),
        other => Err(ApiError::new(ErrorCode::PaymentClosed, format!("the payment is {}", other.as_str()))),
    }
}
