use axum::{
    extract::State,
    http::{header::LOCATION, StatusCode},
    response::IntoResponse,
};
use chrono::{DateTime, Utc};
use goodsmall_platform::{
    auth::{AuthUser, Role},
    error::{ApiError, ApiResult, ErrorCode, Problem},
    extract::{rfc3339_instant, Json, Path, Query},
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::{
    catalogue::{NewProduct, Product, ProductChanges},
    domain::{
        Cursor, DecimalInput, Description, FieldErrors, PageSize, Price, ProductName, ProductStatus, StockQuantity,
    },
    state::ProductState,
};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProduct {
    /// 1 to 200 characters once trimmed, no control characters.
    #[schema(min_length = 1, max_length = 200, example = "Lightstick")]
    pub name: String,
    /// Up to 5,000 characters.
    #[serde(default)]
    #[schema(max_length = 5000)]
    pub description: String,
    /// A plain decimal string with at most two decimals, e.g. `"120.00"`: greater than
    /// zero, at most `100000000.00`.
    #[schema(value_type = String, example = "120.00", pattern = r"^[0-9]+(\.[0-9]{1,2})?$")]
    pub price: DecimalInput,
    /// Units in stock, 0 to 10,000,000.
    #[schema(minimum = 0, maximum = 10_000_000)]
    pub quantity: i64,
    /// `PRE_SALE` when not given.
    #[serde(default)]
    pub status: ProductStatus,
    pub opens_at: Option<DateTime<Utc>>,
}

/// Create a product (merchants and admins).
#[utoipa::path(post, path = "/api/products", tag = "products", security(("bearer" = [])), request_body = CreateProduct,
    responses((status = 201, body = Product, links(
                  ("detail" = (operation_id = "products_detail", parameters(("id" = "$response.body#/id")))),
                  ("update" = (operation_id = "products_update", parameters(("id" = "$response.body#/id")))),
                  ("stock" = (operation_id = "products_stock", parameters(("id" = "$response.body#/id")))),
                  ("add_to_cart" = (operation_id = "cart_add",
                      request_body = json!({ "product_id": "$response.body#/id" }))),
                  ("create_sale" = (operation_id = "sales_create",
                      request_body = json!({ "product_id": "$response.body#/id" }))))),
              (status = 401, body = Problem), (status = 403, body = Problem,
                  description = "FORBIDDEN: shoppers may not"),
              (status = 422, body = Problem, description = "VALIDATION_FAILED or INVALID_BODY")))]
pub async fn create(
    State(state): State<ProductState>,
    user: AuthUser,
    Json(body): Json<CreateProduct>,
) -> ApiResult<impl IntoResponse> {
    user.require_merchant()?;
    let mut errors = FieldErrors::default();
    let name = errors.check("name", ProductName::parse(&body.name));
    let description = errors.check("description", Description::parse(&body.description));
    let price = errors.check("price", Price::parse(&body.price));
    let quantity = errors.check("quantity", StockQuantity::parse(body.quantity));
    let opens_at = body.opens_at.and_then(|at| errors.check("opens_at", rfc3339_instant(at)));
    errors.into_result()?;
    let (Some(name), Some(description), Some(price), Some(quantity)) = (name, description, price, quantity) else {
        unreachable!("every field parsed")
    };
    let new =
        NewProduct { merchant_id: user.user_id, name, description, price, quantity, status: body.status, opens_at };
    let product = state.catalogue.create(new).await?;
    state.details.store(&product).await;
    state.stock.reset(&product).await.map_err(ApiError::failure)?;
    let location = format!("/api/products/{}", product.id);
    Ok((StatusCode::CREATED, [(LOCATION, location)], Json(product)))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Items per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub size: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Only products whose name contains this (case-insensitive), at most 100 characters.
    #[param(max_length = 100)]
    pub q: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ProductPage {
    pub items: Vec<Product>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Browse and search products, newest first, with cursor paging.
#[utoipa::path(get, path = "/api/products", tag = "products", params(ListQuery),
    responses((status = 200, body = ProductPage), (status = 400, body = Problem,
              description = "INVALID_QUERY or INVALID_CURSOR")))]
pub async fn list(State(state): State<ProductState>, Query(query): Query<ListQuery>) -> ApiResult<Json<ProductPage>> {
    let size = PageSize::parse(query.size).map_err(|e| ApiError::new(ErrorCode::InvalidQuery, e))?;
    let after = match query.cursor.as_deref().filter(|c| !c.is_empty()) {
        Some(c) => Some(Cursor::parse(c).map_err(|e| ApiError::new(ErrorCode::InvalidCursor, e))?),
        None => None,
    };
    let q = query.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    if q.is_some_and(|q| q.chars().count() > 100) {
        return Err(ApiError::new(ErrorCode::InvalidQuery, "`q` must be at most 100 characters"));
    }
    let page = state.catalogue.list(q, size, after).await?;
    Ok(Json(ProductPage { items: page.items, next_cursor: page.next.map(Cursor::encode) }))
}

async fn existing(state: &ProductState, id: i64) -> ApiResult<Product> {
    state.details.get(id).await?.ok_or_else(|| ApiError::new(ErrorCode::ProductNotFound, format!("no product {id}")))
}

/// One product (served from the cache when possible).
#[utoipa::path(get, path = "/api/products/{id}", tag = "products", params(("id" = i64, Path, minimum = 1)),
    responses((status = 200, body = Product), (status = 404, body = Problem, description = "PRODUCT_NOT_FOUND")))]
pub async fn detail(State(state): State<ProductState>, Path(id): Path<i64>) -> ApiResult<Json<Product>> {
    Ok(Json(existing(&state, id).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductUpdate {
    /// 1 to 200 characters once trimmed, no control characters.
    #[schema(min_length = 1, max_length = 200)]
    pub name: Option<String>,
    /// Up to 5,000 characters.
    #[schema(max_length = 5000)]
    pub description: Option<String>,
    /// As in `CreateProduct`.
    #[schema(value_type = Option<String>, example = "99.50", pattern = r"^[0-9]+(\.[0-9]{1,2})?$")]
    pub price: Option<DecimalInput>,
    /// Units in stock, 0 to 10,000,000.
    #[schema(minimum = 0, maximum = 10_000_000)]
    pub quantity: Option<i64>,
    pub status: Option<ProductStatus>,
    pub opens_at: Option<DateTime<Utc>>,
}

/// Change a product (its merchant, or an admin); visible to readers at once.
#[utoipa::path(patch, path = "/api/products/{id}", tag = "products", security(("bearer" = [])), params(("id" = i64,
    Path, minimum = 1)),
    request_body = ProductUpdate,
    responses((status = 200, body = Product), (status = 403, body = Problem, description = "FORBIDDEN: a shopper, or \
        another merchant's product"),
              (status = 404, body = Problem, description = "PRODUCT_NOT_FOUND"), (status = 422, body = Problem,
                  description = "VALIDATION_FAILED")))]
pub async fn update(
    State(state): State<ProductState>,
    user: AuthUser,
    Path(id): Path<i64>,
    Json(body): Json<ProductUpdate>,
) -> ApiResult<Json<Product>> {
    user.require_merchant()?;
    let mut errors = FieldErrors::default();
    let changes = ProductChanges {
        name: body.name.and_then(|v| errors.check("name", ProductName::parse(&v))),
        description: body.description.and_then(|v| errors.check("description", Description::parse(&v))),
        price: body.price.and_then(|v| errors.check("price", Price::parse(&v))),
        quantity: body.quantity.and_then(|v| errors.check("quantity", StockQuantity::parse(v))),
        status: body.status,
        opens_at: body.opens_at.and_then(|v| errors.check("opens_at", rfc3339_instant(v))),
    };
    errors.into_result()?;
    let current = state
        .catalogue
        .find_by_id(id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::ProductNotFound, format!("no product {id}")))?;
    if current.merchant_id != user.user_id && user.role != Role::Admin {
        return Err(ApiError::new(ErrorCode::Forbidden, "only the product's merchant (or an admin) may change it"));
    }
    let quantity_changed = changes.quantity.is_some();
    if !state.catalogue.update(id, changes).await? {
        return Err(ApiError::new(ErrorCode::ProductNotFound, format!("no product {id}")));
    }
    let product = state
        .catalogue
        .find_by_id(id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::ProductNotFound, format!("no product {id}")))?;
    state.details.store(&product).await;
    if quantity_changed {
        state.stock.reset(&product).await.map_err(ApiError::failure)?;
    }
    Ok(Json(product))
}

#[derive(Serialize, ToSchema)]
pub struct Stock {
    pub product_id: i64,
    /// Units that can be bought right now.
    pub available: i64,
}

/// Live stock of one product (never cached).
#[utoipa::path(get, path = "/api/products/{id}/stock", tag = "products", params(("id" = i64, Path, minimum = 1)),
    responses((status = 200, body = Stock), (status = 404, body = Problem, description = "PRODUCT_NOT_FOUND")))]
pub async fn stock(State(state): State<ProductState>, Path(id): Path<i64>) -> ApiResult<Json<Stock>> {
    let product = existing(&state, id).await?;
    let available = state.stock.available(&product).await.map_err(ApiError::failure)?;
    Ok(Json(Stock { product_id: id, available }))
}
