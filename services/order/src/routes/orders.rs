use axum::extract::State;
use goodsmall_platform::{
    auth::AuthUser,
    clock::now_millis,
    error::{ApiError, ApiResult, ErrorCode, Problem},
    events::contracts::kinds,
    extract::{Json, Path, Query},
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::{domain::OrderStatus, orders::Order, state::OrderState};

async fn owned(state: &OrderState, user: &AuthUser, id: &str) -> ApiResult<Order> {
    // Someone else's order and no order look the same: ids are not confirmed to strangers.
    state
        .orders
        .find_owned(id, user.user_id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::OrderNotFound, format!("no order {id}")))
}

/// One of your orders, with its progress.
#[utoipa::path(get, path = "/api/orders/{id}", tag = "orders", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = Order), (status = 404, body = Problem, description = "ORDER_NOT_FOUND")))]
pub async fn detail(State(state): State<OrderState>, user: AuthUser, Path(id): Path<String>) -> ApiResult<Json<Order>> {
    Ok(Json(owned(&state, &user, &id).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub size: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct OrderPage {
    pub items: Vec<Order>,
    pub next_cursor: Option<String>,
}

/// Your orders, newest first.
#[utoipa::path(get, path = "/api/orders", tag = "orders", security(("bearer" = [])), params(ListQuery),
    responses((status = 200, body = OrderPage), (status = 400, body = Problem, description = "INVALID_QUERY or \
        INVALID_CURSOR")))]
pub async fn list(
    State(state): State<OrderState>,
    user: AuthUser,
    Query(query): Query<ListQuery>,
) -> ApiResult<Json<OrderPage>> {
    let size = query.size.unwrap_or(20);
    if !(1..=100).contains(&size) {
        return Err(ApiError::new(ErrorCode::InvalidQuery, "`size` must be between 1 and 100"));
    }
    let cursor = query.cursor.filter(|c| !c.is_empty());
    if cursor.as_deref().is_some_and(|c| uuid::Uuid::parse_str(c).is_err()) {
        return Err(ApiError::new(ErrorCode::InvalidCursor, "the cursor is not one this API returned"));
    }
    let mut ids = state.orders.ids_of(user.user_id, cursor.as_deref(), i64::from(size) + 1).await?;
    let next_cursor = (ids.len() > size as usize).then(|| {
        ids.truncate(size as usize);
        ids.last().cloned().unwrap_or_default()
    });
    let mut items = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(order) = state.orders.find(&id).await? {
            items.push(order);
        }
    }
    Ok(Json(OrderPage { items, next_cursor }))
}

/// Cancel an order before it ships: unpaid orders are released, paid ones refunded.
#[utoipa::path(post, path = "/api/orders/{id}/cancel", tag = "orders", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = Order), (status = 404, body = Problem, description = "ORDER_NOT_FOUND"),
              (status = 409, body = Problem, description = "ORDER_STATE_CONFLICT")))]
pub async fn cancel(State(state): State<OrderState>, user: AuthUser, Path(id): Path<String>) -> ApiResult<Json<Order>> {
    let order = owned(&state, &user, &id).await?;
    let was_paid = order.status == OrderStatus::Complete;
    let from = [OrderStatus::Processing, OrderStatus::Complete];
    if !state.orders.transition(&id, &from, OrderStatus::Canceled, Some((kinds::ORDER_CANCELED, was_paid))).await? {
        let now = owned(&state, &user, &id).await?;
        return Err(ApiError::new(
            ErrorCode::OrderStateConflict,
            format!("an order in {} cannot be cancelled", now.status.as_str()),
        ));
    }
    Ok(Json(owned(&state, &user, &id).await?))
}

/// Ask to return a delivered order, inside the return window.
#[utoipa::path(post, path = "/api/orders/{id}/return", tag = "orders", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = Order), (status = 404, body = Problem, description = "ORDER_NOT_FOUND"),
              (status = 409, body = Problem, description = "ORDER_STATE_CONFLICT")))]
pub async fn request_return(
    State(state): State<OrderState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Order>> {
    let order = owned(&state, &user, &id).await?;
    let window_ms = state.return_window_secs as i64 * 1000;
    let in_window = order.status == OrderStatus::DeliveryComplete
        && now_millis() - order.status_changed_at.timestamp_millis() < window_ms;
    if !in_window
        || !state.orders.transition(&id, &[OrderStatus::DeliveryComplete], OrderStatus::ReturnNow, None).await?
    {
        return Err(ApiError::new(
            ErrorCode::OrderStateConflict,
            format!(
                "an order in {} cannot be returned (only delivered orders, within the return window)",
                order.status.as_str()
            ),
        ));
    }
    Ok(Json(owned(&state, &user, &id).await?))
}
