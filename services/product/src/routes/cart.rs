use axum::{extract::State, http::StatusCode};
use goodsmall_platform::{
    auth::AuthUser,
    error::{ApiError, ApiResult, ErrorCode, FieldError, Problem},
    extract::{Json, Path},
};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::{
    cart::{AddError, CartView},
    domain::{CartQuantity, FieldErrors},
    state::ProductState,
};

/// The caller's cart with prices as they are now.
#[utoipa::path(get, path = "/api/cart", tag = "cart", security(("bearer" = [])),
    responses((status = 200, body = CartView), (status = 401, body = Problem)))]
pub async fn view(State(state): State<ProductState>, user: AuthUser) -> ApiResult<Json<CartView>> {
    Ok(Json(state.carts.view(user.user_id).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddItem {
    pub product_id: i64,
    /// 1 to 99; added to the line when the product is already in the cart.
    pub quantity: i64,
}

/// Put a product in the cart (or more of it).
#[utoipa::path(post, path = "/api/cart/items", tag = "cart", security(("bearer" = [])), request_body = AddItem,
    responses((status = 200, body = CartView), (status = 404, body = Problem, description = "PRODUCT_NOT_FOUND"),
              (status = 422, body = Problem, description = "VALIDATION_FAILED")))]
pub async fn add(State(state): State<ProductState>, user: AuthUser, Json(body): Json<AddItem>) -> ApiResult<Json<CartView>> {
    let mut errors = FieldErrors::default();
    let quantity = errors.check("quantity", CartQuantity::parse(body.quantity));
    errors.into_result()?;
    let quantity = quantity.expect("checked above");
    if state.details.get(body.product_id).await?.is_none() {
        return Err(ApiError::new(ErrorCode::ProductNotFound, format!("no product {}", body.product_id)));
    }
    state.carts.add(user.user_id, body.product_id, quantity).await.map_err(|e| match e {
        AddError::LineFull => ApiError::validation(vec![FieldError { field: "quantity".into(), message: e.to_string() }]),
        AddError::Other(e) => ApiError::from(e),
    })?;
    Ok(Json(state.carts.view(user.user_id).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetQuantity {
    /// 1 to 99.
    pub quantity: i64,
}

fn not_in_cart(product_id: i64) -> ApiError {
    ApiError::new(ErrorCode::CartItemNotFound, format!("product {product_id} is not in your cart"))
}

/// Change how many units of a product the cart holds.
#[utoipa::path(put, path = "/api/cart/items/{product_id}", tag = "cart", security(("bearer" = [])),
    params(("product_id" = i64, Path)), request_body = SetQuantity,
    responses((status = 200, body = CartView), (status = 404, body = Problem, description = "CART_ITEM_NOT_FOUND"),
              (status = 422, body = Problem)))]
pub async fn set_quantity(
    State(state): State<ProductState>,
    user: AuthUser,
    Path(product_id): Path<i64>,
    Json(body): Json<SetQuantity>,
) -> ApiResult<Json<CartView>> {
    let mut errors = FieldErrors::default();
    let quantity = errors.check("quantity", CartQuantity::parse(body.quantity));
    errors.into_result()?;
    if !state.carts.set_quantity(user.user_id, product_id, quantity.expect("checked above")).await? {
        return Err(not_in_cart(product_id));
    }
    Ok(Json(state.carts.view(user.user_id).await?))
}

/// Take a product out of the cart.
#[utoipa::path(delete, path = "/api/cart/items/{product_id}", tag = "cart", security(("bearer" = [])),
    params(("product_id" = i64, Path)),
    responses((status = 204), (status = 404, body = Problem, description = "CART_ITEM_NOT_FOUND")))]
pub async fn remove(State(state): State<ProductState>, user: AuthUser, Path(product_id): Path<i64>) -> ApiResult<StatusCode> {
    if !state.carts.remove(user.user_id, product_id).await? {
        return Err(not_in_cart(product_id));
    }
    Ok(StatusCode::NO_CONTENT)
}
