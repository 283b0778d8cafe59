use axum::{
    extract::State,
    http::{header::LOCATION, StatusCode},
    response::IntoResponse,
};
use goodsmall_platform::{
    auth::AuthUser,
    error::{ApiError, ApiResult, ErrorCode, Problem},
    extract::{IdempotencyKey, Json, Path},
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    cart::CartView,
    checkout::CheckoutOutcome,
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
    /// 1 to 99; added to the line when the product is already in the cart (which then
    /// holds at most 99).
    #[schema(minimum = 1, maximum = 99)]
    pub quantity: i64,
}

/// Put a product in the cart (or more of it).
#[utoipa::path(post, path = "/api/cart/items", tag = "cart", security(("bearer" = [])), request_body = AddItem,
    responses((status = 200, body = CartView, links(
        ("set_quantity" = (operation_id = "cart_set_quantity",
                           parameters(("product_id" = "$request.body#/product_id")))),
        ("remove" = (operation_id = "cart_remove", parameters(("product_id" = "$request.body#/product_id")))),
        ("checkout" = (operation_id = "cart_checkout")))),
              (status = 404, body = Problem, description = "PRODUCT_NOT_FOUND"),
              (status = 422, body = Problem, description = "VALIDATION_FAILED: `quantity` out of range, or the line \
                  would hold more than 99")))]
pub async fn add(
    State(state): State<ProductState>,
    user: AuthUser,
    Json(body): Json<AddItem>,
) -> ApiResult<Json<CartView>> {
    let mut errors = FieldErrors::default();
    let quantity = errors.check("quantity", CartQuantity::parse(body.quantity));
    errors.into_result()?;
    let quantity = quantity.expect("checked above");
    if state.details.get(body.product_id).await?.is_none() {
        return Err(ApiError::new(ErrorCode::ProductNotFound, format!("no product {}", body.product_id)));
    }
    state.carts.add(user.user_id, body.product_id, quantity).await?;
    Ok(Json(state.carts.view(user.user_id).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetQuantity {
    /// 1 to 99.
    #[schema(minimum = 1, maximum = 99)]
    pub quantity: i64,
}

fn not_in_cart(product_id: i64) -> ApiError {
    ApiError::new(ErrorCode::CartItemNotFound, format!("product {product_id} is not in your cart"))
}

/// Change how many units of a product the cart holds.
#[utoipa::path(put, path = "/api/cart/items/{product_id}", tag = "cart", security(("bearer" = [])),
    params(("product_id" = i64, Path, minimum = 1)), request_body = SetQuantity,
    responses((status = 200, body = CartView), (status = 404, body = Problem, description = "CART_ITEM_NOT_FOUND"),
              (status = 422, body = Problem, description = "VALIDATION_FAILED")))]
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
    params(("product_id" = i64, Path, minimum = 1)),
    responses((status = 204, description = "removed"), (status = 404, body = Problem,
              description = "CART_ITEM_NOT_FOUND")))]
pub async fn remove(
    State(state): State<ProductState>,
    user: AuthUser,
    Path(product_id): Path<i64>,
) -> ApiResult<StatusCode> {
    if !state.carts.remove(user.user_id, product_id).await? {
        return Err(not_in_cart(product_id));
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct CheckoutAccepted {
    pub order_id: String,
    /// `PROCESSING` until paid.
    pub status: String,
    pub status_url: String,
    pub payment_url: String,
}

/// Buy everything in the cart: all lines are reserved at once or none. Answered `202`
/// once the checkout is durable; the order appears at `status_url` moments later.
/// Retrying with the same `Idempotency-Key` returns the same order.
#[utoipa::path(post, path = "/api/cart/checkout", tag = "cart", security(("bearer" = [])),
    params(("Idempotency-Key" = String, Header, description = "unique per intended checkout (1 to 100 visible ASCII \
        characters); reuse it on retry",
            min_length = 1, max_length = 100, pattern = "^[!-~]{1,100}$")),
    responses((status = 202, body = CheckoutAccepted, links(
        ("order" = (operation_id = "orders_detail", parameters(("id" = "$response.body#/order_id")))),
        ("cancel" = (operation_id = "orders_cancel", parameters(("id" = "$response.body#/order_id")))),
        ("payment" = (operation_id = "payments_detail", parameters(("order_id" = "$response.body#/order_id")))),
        ("pay" = (operation_id = "payments_pay", parameters(("order_id" = "$response.body#/order_id")))))),
              (status = 400, body = Problem, description = "IDEMPOTENCY_KEY_REQUIRED"),
              (status = 409, body = Problem, description = "INSUFFICIENT_STOCK or PRODUCT_NOT_ON_SALE"),
              (status = 422, body = Problem, description = "CART_EMPTY")))]
pub async fn checkout(
    State(state): State<ProductState>,
    user: AuthUser,
    key: IdempotencyKey,
) -> ApiResult<impl IntoResponse> {
    match state.checkouts.place(user.user_id, &key).await? {
        CheckoutOutcome::Placed { order_id, .. } => {
            let status_url = format!("/api/orders/{order_id}");
            let accepted = CheckoutAccepted {
                payment_url: format!("/api/payments/{order_id}"),
                status_url: status_url.clone(),
                status: "PROCESSING".into(),
                order_id,
            };
            Ok((StatusCode::ACCEPTED, [(LOCATION, status_url)], Json(accepted)))
        }
        CheckoutOutcome::EmptyCart => Err(ApiError::new(ErrorCode::CartEmpty, "there is nothing in your cart")),
        CheckoutOutcome::NotOnSale { product_id } => Err(ApiError::new(
            ErrorCode::ProductNotOnSale,
            format!("product {product_id} is not on sale; remove it from the cart"),
        )),
        CheckoutOutcome::Short { product_id } => Err(ApiError::new(
            ErrorCode::InsufficientStock,
            format!("fewer units of product {product_id} are left than your cart holds"),
        )),
    }
}
