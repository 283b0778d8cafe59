//! Thin HTTP handlers: parse the request into domain types, call one module, shape
//! the answer.

pub mod internal;
mod orders;
mod sales;

use goodsmall_platform::error::{ApiError, ErrorCode};
use goodsmall_sale::Refusal;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::state::OrderState;

pub fn router(state: OrderState) -> OpenApiRouter {
    routes().with_state(state)
}

/// This service's part of the public API document (docs/openapi.json); the operator's
/// internal API is not in it.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().into_openapi()
}

fn routes() -> OpenApiRouter<OrderState> {
    OpenApiRouter::new()
        .routes(routes!(sales::create, sales::list))
        .routes(routes!(sales::detail))
        .routes(routes!(sales::close))
        .routes(routes!(sales::purchase))
        .routes(routes!(orders::list))
        .routes(routes!(orders::detail))
        .routes(routes!(orders::cancel))
        .routes(routes!(orders::request_return))
}

/// Each refusal of the stock engine has its own stable code.
pub fn refusal(r: &Refusal) -> ApiError {
    match r {
        Refusal::UnknownSale => ApiError::new(ErrorCode::SaleNotFound, "no such sale"),
        Refusal::SaleNotOpen => ApiError::new(ErrorCode::SaleNotOpen, "the sale has not opened yet"),
        Refusal::SaleClosed => ApiError::new(ErrorCode::SaleClosed, "the sale has closed"),
        Refusal::SoldOut => ApiError::new(ErrorCode::SoldOut, "every unit has been sold"),
        Refusal::Halted => ApiError::new(ErrorCode::SaleHalted, "the merchant has halted this sale; try again later"),
        Refusal::InsufficientStock => ApiError::new(ErrorCode::InsufficientStock, "fewer units are left than you asked for"),
        Refusal::PurchaseLimit => ApiError::new(ErrorCode::PurchaseLimit, "you have reached this sale's per-shopper limit"),
    }
}
