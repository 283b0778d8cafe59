//! Thin HTTP handlers.

use axum::{extract::State, http::StatusCode, response::IntoResponse};
use goodsmall_platform::{
    auth::AuthUser,
    error::{ApiError, ApiResult, ErrorCode, Problem},
    extract::{IdempotencyKey, Json, Path},
};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    payments::{Payment, PaymentStatus},
    state::PaymentState,
};

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

async fn owned(state: &PaymentState, user: &AuthUser, order_id: &str) -> ApiResult<Payment> {
    state
        .payments
        .find(order_id)
        .await?
        .filter(|p| p.user_id == user.user_id)
        .ok_or_else(|| ApiError::new(ErrorCode::PaymentNotFound, format!("no payment is due for order {order_id}")))
}

/// The payment of one of your orders.
#[utoipa::path(get, path = "/api/payments/{order_id}", tag = "payments", security(("bearer" = [])), params(("order_id" = String, Path)),
    responses((status = 200, body = Payment), (status = 404, body = Problem, description = "PAYMENT_NOT_FOUND")))]
pub async fn detail(State(state): State<PaymentState>, user: AuthUser, Path(order_id): Path<String>) -> ApiResult<Json<Payment>> {
    Ok(Json(owned(&state, &user, &order_id).await?))
}

/// Pay for an order. Safe to retry: the money is taken at most once, and a retry
/// answers with the payment's outcome.
#[utoipa::path(post, path = "/api/payments/{order_id}", tag = "payments", security(("bearer" = [])),
    params(("order_id" = String, Path), ("Idempotency-Key" = String, Header, description = "unique per intended payment (1 to 100 visible ASCII characters); reuse it on retry",
            min_length = 1, max_length = 100, pattern = "^[!-~]{1,100}$")),
    responses((status = 200, body = Payment), (status = 402, body = Problem, description = "PAYMENT_DECLINED"),
              (status = 404, body = Problem, description = "PAYMENT_NOT_FOUND"), (status = 409, body = Problem, description = "PAYMENT_CLOSED")))]
pub async fn pay(State(state): State<PaymentState>, user: AuthUser, _key: IdempotencyKey, Path(order_id): Path<String>) -> ApiResult<impl IntoResponse> {
    let payment = owned(&state, &user, &order_id).await?;
    let payment = state.payments.pay(payment).await?;
    match payment.status {
        PaymentStatus::Succeeded => Ok((StatusCode::OK, Json(payment))),
        PaymentStatus::Failed => Err(ApiError::new(
            ErrorCode::PaymentDeclined,
            format!("{}; the order has failed and its stock is released", payment.reason.unwrap_or_else(|| "declined".into())),
        )),
        PaymentStatus::Pending => Err(ApiError::new(ErrorCode::PaymentClosed, "the payment deadline has passed; the order is being cancelled")),
        other => Err(ApiError::new(ErrorCode::PaymentClosed, format!("the payment is {}", other.as_str()))),
    }
}
