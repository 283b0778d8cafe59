//! The operator's internal API (`goodsmall_contracts::internal_api` has the contract): the order
//! service stays the only writer of its sales, and the operator needs no database
//! credentials. Every route needs the operator's token; none is in the OpenAPI document.

use axum::{
    extract::{Request, State},
    http::{
        header::{AUTHORIZATION, CONTENT_TYPE},
        StatusCode,
    },
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
    Router,
};
use goodsmall_contracts::{
    internal_api::{FoundSale, Loaded, StockBelowCommittedProblem, PREFIX, STOCK_BELOW_COMMITTED},
    sales::NewSaleBody,
};
use goodsmall_platform::{
    auth::internal::InternalVerifier,
    error::{ApiError, ApiResult},
    extract::{Json, Path},
};
use goodsmall_sale::EngineError;

use crate::{
    routes::sales::field_errors,
    sales::{Sales, SalesError},
};

/// The routes, or none (every `/internal` path answers 404) when no operator key is
/// configured: the one-process shop runs its operator in-process.
pub fn router(sales: Sales, verifier: InternalVerifier) -> Router {
    Router::new()
        .route(&format!("{PREFIX}/{{namespace}}/{{name}}"), get(find).put(apply).delete(retire))
        .route(&format!("{PREFIX}/{{namespace}}/{{name}}/load"), post(load))
        .route(&format!("{PREFIX}/{{namespace}}/{{name}}/close"), post(close))
        .route_layer(middleware::from_fn_with_state(verifier, operator_only))
        .with_state(sales)
}

async fn operator_only(State(verifier): State<InternalVerifier>, request: Request, next: Next) -> Response {
    let header = request.headers().get(AUTHORIZATION).and_then(|v| v.to_str().ok());
    match verifier.verify_header(header) {
        Ok(caller) => {
            tracing::debug!(caller, path = %request.uri().path(), "internal call");
            next.run(request).await
        }
        Err(refused) => refused.into_response(),
    }
}

fn key(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

async fn find(
    State(sales): State<Sales>,
    Path((namespace, name)): Path<(String, String)>,
) -> ApiResult<Json<FoundSale>> {
    Ok(Json(FoundSale { sale: sales.find_flash_sale(&key(&namespace, &name)).await? }))
}

/// The terms meet the rules every way of making a sale shares (`SaleTerms::parse`), or
/// the answer is `422 VALIDATION_FAILED` naming each broken one, as `POST /api/sales`'s.
async fn apply(
    State(sales): State<Sales>,
    Path((namespace, name)): Path<(String, String)>,
    Json(body): Json<NewSaleBody>,
) -> ApiResult<Response> {
    let terms = body.parse().map_err(|errors| ApiError::validation(field_errors(&errors)))?;
    match sales.apply_flash_sale(&key(&namespace, &name), terms).await {
        Ok(sale) => Ok(Json(sale).into_response()),
        Err(SalesError::Engine(EngineError::StockBelowCommitted { sale_id, stock, committed })) => {
            let detail = format!("stock {stock} is below the {committed} units already reserved or sold");
            let problem = StockBelowCommittedProblem { code: STOCK_BELOW_COMMITTED.into(), detail, sale_id, committed };
            Ok((StatusCode::CONFLICT, [(CONTENT_TYPE, "application/problem+json")], Json(problem)).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

async fn load(State(sales): State<Sales>, Path((namespace, name)): Path<(String, String)>) -> ApiResult<Json<Loaded>> {
    // A manifest without a sale answers 404 `SALE_NOT_FOUND` (`SalesError::NoFlashSale`).
    Ok(Json(Loaded { rebuilt_from_orders: sales.load_flash_sale(&key(&namespace, &name)).await? }))
}

async fn close(State(sales): State<Sales>, Path((namespace, name)): Path<(String, String)>) -> ApiResult<StatusCode> {
    sales.close_flash_sale(&key(&namespace, &name)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Idempotent: a manifest without a sale (already retired) is fine.
async fn retire(State(sales): State<Sales>, Path((namespace, name)): Path<(String, String)>) -> ApiResult<StatusCode> {
    sales.retire_flash_sale(&key(&namespace, &name)).await?;
    Ok(StatusCode::NO_CONTENT)
}
