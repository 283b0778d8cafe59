//! Thin HTTP handlers: parse the request into domain types, call one module, shape
//! the answer.

mod cart;
mod products;

use goodsmall_platform::error::{ApiError, FieldError};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{cart::CartError, catalogue::CatalogueError, checkout::CheckoutError, state::ProductState};

pub fn router(state: ProductState) -> OpenApiRouter {
    routes().with_state(state)
}

/// This service's part of the public API document (docs/openapi.json).
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().into_openapi()
}

fn routes() -> OpenApiRouter<ProductState> {
    OpenApiRouter::new()
        .routes(routes!(products::create, products::list))
        .routes(routes!(products::detail, products::update))
        .routes(routes!(products::stock))
        .routes(routes!(cart::view))
        .routes(routes!(cart::add))
        .routes(routes!(cart::set_quantity, cart::remove))
        .routes(routes!(cart::checkout))
}

/// The domain errors' answers, in one place: a full cart line is the shopper's to fix
/// (`VALIDATION_FAILED` on `quantity`); a dependency that does not answer is a 503 the
/// client may retry, anything else a 500, the error kept as the answer's cause. The
/// stock engine's errors are answered the same way (`ApiError::failure`).
impl From<CatalogueError> for ApiError {
    fn from(e: CatalogueError) -> Self {
        ApiError::failure(e)
    }
}

impl From<CartError> for ApiError {
    fn from(e: CartError) -> Self {
        match e {
            CartError::LineFull => {
                ApiError::validation(vec![FieldError { field: "quantity".into(), message: e.to_string() }])
            }
            e => ApiError::failure(e),
        }
    }
}

impl From<CheckoutError> for ApiError {
    fn from(e: CheckoutError) -> Self {
        ApiError::failure(e)
    }
}
