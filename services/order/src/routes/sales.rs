use axum::{
    extract::State,
    http::{header::LOCATION, HeaderMap, StatusCode},
    response::IntoResponse,
};
use chrono::{DateTime, Utc};
use goodsmall_contracts::admission::AdmissionInput;
use goodsmall_contracts::sales::{SaleTerms, Spelling, TermError, TermsInput};
use goodsmall_platform::{
    auth::{AuthUser, BearerToken, Role},
    error::{ApiError, ApiResult, ErrorCode, FieldError, Problem},
    extract::{rfc3339_instant, IdempotencyKey, Json, Path},
    money::DecimalInput,
};
use goodsmall_sale::{SaleCounters, SaleId, UserId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::queue::ADMISSION_TOKEN;
use crate::{
    domain::{OrderStatus, PurchaseQuantity},
    purchase::PurchaseOutcome,
    sales::Sale,
    state::OrderState,
    waiting_room::AdmissionProblem,
};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSale {
    /// One of your products.
    #[schema(minimum = 1)]
    pub product_id: i64,
    /// Units on offer, 1 to 100,000,000.
    // The bounds are `goodsmall_contracts::sales`'s (a test checks they agree).
    #[schema(minimum = 1, maximum = 100_000_000)]
    pub stock: i64,
    /// A plain decimal string with at most two decimals, e.g. `"120.00"`: greater than
    /// zero, at most `100000000.00`.
    #[schema(value_type = String, example = "120.00", pattern = r"^[0-9]+(\.[0-9]{1,2})?$")]
    pub price: DecimalInput,
    pub opens_at: DateTime<Utc>,
    /// After `opens_at`.
    pub closes_at: DateTime<Utc>,
    /// Units one shopper may hold in this sale, 1 to 1,000.
    #[schema(minimum = 1, maximum = 1_000)]
    pub per_user_limit: i64,
    /// A waiting room (`POST /api/sales/{id}/queue`); without it, first come, first served.
    #[serde(default)]
    pub admission: Option<AdmissionInput>,
}

/// Set up a flash sale of one of your products (merchants; an admin may for any
/// product, and the sale is its merchant's). The FlashSale operator drives the same module.
#[utoipa::path(post, path = "/api/sales", tag = "sales", security(("bearer" = [])), request_body = CreateSale,
    responses((status = 201, body = Sale, links(
                  ("detail" = (operation_id = "sales_detail", parameters(("id" = "$response.body#/id")))),
                  ("buy" = (operation_id = "sales_purchase", parameters(("id" = "$response.body#/id")))),
                  ("close" = (operation_id = "sales_close", parameters(("id" = "$response.body#/id")))))),
              (status = 403, body = Problem, description = "FORBIDDEN: a shopper, or another merchant's product"),
              (status = 404, body = Problem, description = "PRODUCT_NOT_FOUND"),
              (status = 422, body = Problem, description = "VALIDATION_FAILED"),
              (status = 503, body = Problem,
               description = "SERVICE_UNAVAILABLE: the product service does not answer")))]
pub async fn create(
    State(state): State<OrderState>,
    user: AuthUser,
    Json(body): Json<CreateSale>,
) -> ApiResult<impl IntoResponse> {
    user.require_merchant()?;
    // The rules every way of making a sale shares (a FlashSale's and the operator's too).
    let input = TermsInput {
        product_id: body.product_id,
        stock: body.stock,
        price: &body.price,
        opens_at: body.opens_at,
        closes_at: body.closes_at,
        per_user_limit: body.per_user_limit,
        admission: body.admission.as_ref(),
    };
    let parsed = SaleTerms::parse(&input, Spelling::Api);
    let mut errors: Vec<FieldError> = parsed.as_ref().err().map(|e| field_errors(e)).unwrap_or_default();
    for (field, at) in [("opens_at", body.opens_at), ("closes_at", body.closes_at)] {
        if let Err(message) = rfc3339_instant(at) {
            errors.push(FieldError { field: field.into(), message });
        }
    }
    let terms = match parsed {
        Ok(terms) if errors.is_empty() => terms,
        _ => return Err(ApiError::validation(errors)),
    };
    // As the FlashSale path does: the product must exist and be the caller's.
    let owner = state
        .products
        .owner_of(terms.product_id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::ProductNotFound, format!("no product {}", terms.product_id)))?;
    if owner != user.user_id && user.role != Role::Admin {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            format!("product {} belongs to another merchant", terms.product_id),
        ));
    }
    let sale = state.sales.create(terms.for_merchant(owner)).await?;
    Ok((StatusCode::CREATED, [(LOCATION, format!("/api/sales/{}", sale.id))], Json(sale)))
}

/// A sale's broken terms as the API's field errors.
pub fn field_errors(errors: &[TermError]) -> Vec<FieldError> {
    errors.iter().map(|e| FieldError { field: e.field.to_owned(), message: e.message.clone() }).collect()
}

#[derive(Serialize, ToSchema)]
pub struct SaleView {
    #[serde(flatten)]
    pub sale: Sale,
    /// Counters, `stock = remaining + reserved + sold`: live while the stock engine
    /// holds the sale, from the orders once it does not (they survive restarts).
    pub remaining: i64,
    pub reserved: i64,
    pub sold: i64,
    /// The waiting room in numbers, for a sale that has one.
    pub queue: Option<QueueView>,
}

#[derive(Serialize, ToSchema)]
pub struct QueueView {
    /// Everyone who has joined.
    pub joined: u64,
    /// Shoppers let in so far.
    pub admitted: u64,
    /// Still waiting for their turn.
    pub waiting: u64,
    /// Turns that ended unused.
    pub expired: u64,
}

/// Sales open now or still to come, soonest first, with their live counters.
#[utoipa::path(get, path = "/api/sales", tag = "sales", responses((status = 200, body = Vec<SaleView>)))]
pub async fn list(State(state): State<OrderState>) -> ApiResult<Json<Vec<SaleView>>> {
    let mut views = Vec::new();
    for sale in state.sales.recent(std::time::Duration::ZERO).await? {
        if sale.closed_at.is_none() {
            views.push(view(&state, sale).await?);
        }
    }
    views.sort_by_key(|v| (v.sale.opens_at, v.sale.id));
    Ok(Json(views))
}

async fn view(state: &OrderState, sale: Sale) -> ApiResult<SaleView> {
    let SaleCounters { remaining, reserved, sold, .. } = state.sales.counters(&sale).await?;
    let queue = match sale.admission {
        None => None,
        Some(_) => state.waiting_room.counts(SaleId(sale.id)).await?.map(|c| QueueView {
            joined: c.joined,
            admitted: c.admitted,
            waiting: c.waiting(),
            expired: c.expired,
        }),
    };
    Ok(SaleView { sale, remaining, reserved, sold, queue })
}

async fn existing(state: &OrderState, id: i64) -> ApiResult<Sale> {
    state.sales.find(id).await?.ok_or_else(|| ApiError::new(ErrorCode::SaleNotFound, format!("no sale {id}")))
}

/// A sale with its live counters.
#[utoipa::path(get, path = "/api/sales/{id}", tag = "sales", params(("id" = i64, Path, minimum = 1)),
    responses((status = 200, body = SaleView), (status = 404, body = Problem, description = "SALE_NOT_FOUND")))]
pub async fn detail(State(state): State<OrderState>, Path(id): Path<i64>) -> ApiResult<Json<SaleView>> {
    let sale = existing(&state, id).await?;
    Ok(Json(view(&state, sale).await?))
}

/// End a sale now (its merchant, or an admin).
#[utoipa::path(post, path = "/api/sales/{id}/close", tag = "sales", security(("bearer" = [])),
    params(("id" = i64, Path, minimum = 1)),
    responses((status = 204, description = "closed"),
              (status = 403, body = Problem, description = "FORBIDDEN: a shopper, or another merchant's sale"),
              (status = 404, body = Problem, description = "SALE_NOT_FOUND")))]
pub async fn close(State(state): State<OrderState>, user: AuthUser, Path(id): Path<i64>) -> ApiResult<StatusCode> {
    user.require_merchant()?;
    let sale = existing(&state, id).await?;
    if sale.merchant_id != user.user_id && user.role != Role::Admin {
        return Err(ApiError::new(ErrorCode::Forbidden, "only the sale's merchant (or an admin) may close it"));
    }
    state.sales.close(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PurchaseRequest {
    /// 1 to 10 (and within the sale's per-shopper limit); 1 when not given.
    #[serde(default = "one")]
    #[schema(minimum = 1, maximum = 10, default = 1)]
    pub quantity: i64,
}

fn one() -> i64 {
    1
}

#[derive(Serialize, ToSchema)]
pub struct PurchaseAccepted {
    pub order_id: String,
    /// The order's status now: `PROCESSING` for a new order (until paid); a retry with
    /// the same key answers its order as it stands (e.g. `COMPLETE`, `CANCELED`).
    pub status: OrderStatus,
    pub status_url: String,
    pub payment_url: String,
}

/// Buy from a flash sale. Decided atomically; answered `202` once the order is
/// durable. Retrying with the same `Idempotency-Key` returns the same order, with its
/// status now, also after the stock store lost its data.
#[utoipa::path(post, path = "/api/sales/{id}/purchases", tag = "sales", security(("bearer" = [])),
    params(("id" = i64, Path, minimum = 1),
        ("Idempotency-Key" = String, Header,
         description = "unique per intended purchase (1 to 100 visible ASCII characters); reuse it on retry",
         min_length = 1, max_length = 100, pattern = "^[!-~]{1,100}$"),
        ("Admission-Token" = Option<String>, Header,
         description = "a sale with a waiting room: the admission from `GET /api/sales/{id}/queue`")),
    request_body = PurchaseRequest,
    responses((status = 202, body = PurchaseAccepted, links(
        ("order" = (operation_id = "orders_detail", parameters(("id" = "$response.body#/order_id")))),
        ("cancel" = (operation_id = "orders_cancel", parameters(("id" = "$response.body#/order_id")))),
        ("return" = (operation_id = "orders_request_return", parameters(("id" = "$response.body#/order_id")))),
        ("payment" = (operation_id = "payments_detail", parameters(("order_id" = "$response.body#/order_id")))),
        ("pay" = (operation_id = "payments_pay", parameters(("order_id" = "$response.body#/order_id")))))),
        (status = 409, body = Problem,
         description = "SALE_NOT_OPEN, SALE_CLOSED, SALE_HALTED, SOLD_OUT, INSUFFICIENT_STOCK or PURCHASE_LIMIT"),
        (status = 403, body = Problem,
         description = "ADMISSION_REQUIRED, ADMISSION_EXPIRED or ADMISSION_INVALID (a sale with a waiting room)"),
        (status = 404, body = Problem, description = "SALE_NOT_FOUND"),
        (status = 400, body = Problem, description = "IDEMPOTENCY_KEY_REQUIRED"),
        (status = 422, body = Problem, description = "VALIDATION_FAILED: `quantity` out of range"),
        (status = 503, body = Problem, description = "SERVICE_UNAVAILABLE: the stock store or the database does not \
            answer, or the stock store is being rebuilt; retry with the same key after `Retry-After`")))]
pub async fn purchase(
    State(state): State<OrderState>,
    token: BearerToken,
    key: IdempotencyKey,
    headers: HeaderMap,
    Path(sale_id): Path<i64>,
    Json(body): Json<PurchaseRequest>,
) -> ApiResult<impl IntoResponse> {
    let quantity = PurchaseQuantity::parse(body.quantity)
        .map_err(|message| ApiError::validation(vec![FieldError { field: "quantity".into(), message }]))?;
    // Sold out, and the token's user never reserved in it: the answer every such caller
    // gets, so neither the signature, nor Redis, nor the session's logout look-up is
    // needed (a drop's sold-out path; docs/decisions.md).
    let sale = SaleId(sale_id);
    let claimed = || state.authenticator.claimed_user_id(token.as_str()).map(UserId);
    if state.purchases.refuses_outright(sale, claimed) {
        return Err(goodsmall_sale::Refusal::SoldOut.into());
    }
    let user = state.authenticator.verify(token.as_str()).await?;
    let turn_ends_ms = match headers.get(ADMISSION_TOKEN) {
        None => None,
        Some(token) => {
            let token = token.to_str().map_err(|_| invalid_admission())?;
            match state.waiting_room.verify(sale, UserId(user.user_id), token).await? {
                Ok(turn_ends_ms) => Some(turn_ends_ms),
                Err(AdmissionProblem::Invalid) => return Err(invalid_admission()),
            }
        }
    };
    match state.purchases.purchase(sale, UserId(user.user_id), &key, quantity, turn_ends_ms).await? {
        PurchaseOutcome::Accepted { order_id, status, .. } => {
            let status_url = format!("/api/orders/{order_id}");
            let accepted = PurchaseAccepted {
                payment_url: format!("/api/payments/{order_id}"),
                status_url: status_url.clone(),
                status,
                order_id,
            };
            Ok((StatusCode::ACCEPTED, [(LOCATION, status_url)], Json(accepted)))
        }
        PurchaseOutcome::Refused(r) => Err(r.into()),
        PurchaseOutcome::Retry => Err(ApiError::new(
            ErrorCode::ServiceUnavailable,
            "the stock store lost this sale and is rebuilding it; retry with the same Idempotency-Key",
        )
        .retry_after(1)),
    }
}

fn invalid_admission() -> ApiError {
    ApiError::new(ErrorCode::AdmissionInvalid, "the Admission-Token is not an admission to this sale for you")
}

#[cfg(test)]
mod tests {
    use goodsmall_contracts::sales::{MAX_PER_USER_LIMIT, MAX_STOCK};

    use super::*;

    /// utoipa takes only literals: the document's bounds are checked against the rules'.
    #[test]
    fn the_documented_bounds_are_the_rules() {
        let schema = serde_json::to_value(<CreateSale as utoipa::PartialSchema>::schema()).unwrap();
        let bounds = |field: &str| {
            (schema["properties"][field]["minimum"].as_f64(), schema["properties"][field]["maximum"].as_f64())
        };
        assert_eq!(bounds("stock"), (Some(1.0), Some(MAX_STOCK as f64)), "{schema}");
        assert_eq!(bounds("per_user_limit"), (Some(1.0), Some(MAX_PER_USER_LIMIT as f64)), "{schema}");
    }
}
