//! Thin HTTP handlers: parse the request into domain types, call one module, shape
//! the answer.

mod cart;
mod products;

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::state::ProductState;

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
