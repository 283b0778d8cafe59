//! Thin HTTP handlers: parse the request into domain types, call one module, shape
//! the answer.

pub mod internal;
mod orders;
mod queue;
mod sales;

use goodsmall_platform::error::{ApiError, ErrorCode, Unreachable};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    orders::OrderRecordError, purchase::PurchaseError, sales::SalesError, state::OrderState,
    waiting_room::WaitingRoomError, writer::CommitError,
};

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
        .routes(routes!(queue::join, queue::place))
        .routes(routes!(orders::list))
        .routes(routes!(orders::detail))
        .routes(routes!(orders::cancel))
        .routes(routes!(orders::request_return))
}

/// The domain errors' answers, in one place (a refusal of the stock engine answers with
/// its own code: `From<Refusal> for ApiError`, goodsmall-sale): a dependency that does not answer (Redis,
/// the database) is a 503 the client may retry, a manifest without a sale is
/// `SALE_NOT_FOUND`, anything else a 500. The error is kept as the answer's cause and
/// logged, with its whole chain, when the answer is made.
impl From<PurchaseError> for ApiError {
    fn from(e: PurchaseError) -> Self {
        ApiError::failure(e)
    }
}

impl From<WaitingRoomError> for ApiError {
    fn from(e: WaitingRoomError) -> Self {
        ApiError::failure(e)
    }
}

impl Unreachable for WaitingRoomError {
    fn unreachable(&self) -> Option<&'static str> {
        match self {
            WaitingRoomError::Engine(e) => e.unreachable(),
            WaitingRoomError::Sale(e) => e.unreachable(),
            WaitingRoomError::Throttle(e) => e.unreachable(),
            WaitingRoomError::CorruptKey(_) | WaitingRoomError::NoSale(_) | WaitingRoomError::Time(_) => None,
        }
    }
}

impl From<OrderRecordError> for ApiError {
    fn from(e: OrderRecordError) -> Self {
        ApiError::failure(e)
    }
}

impl From<SalesError> for ApiError {
    fn from(e: SalesError) -> Self {
        if let SalesError::NoFlashSale(manifest) = &e {
            let detail = format!("no sale for flashsale {manifest}");
            return ApiError::new(ErrorCode::SaleNotFound, detail).caused_by(e);
        }
        ApiError::failure(e)
    }
}

/// The dependency that did not answer, when that is the failure. The matches name
/// every variant, so a new one is answered on purpose.
impl Unreachable for SalesError {
    fn unreachable(&self) -> Option<&'static str> {
        match self {
            SalesError::Engine(e) => e.unreachable(),
            SalesError::Database(e) => e.unreachable(),
            SalesError::NoFlashSale(_)
            | SalesError::CorruptTime { .. }
            | SalesError::UnknownOrderStatus { .. }
            | SalesError::Vanished(_)
            | SalesError::PartialWaitingRoom { .. }
            | SalesError::KeepsVanishing(_) => None,
        }
    }
}

impl Unreachable for PurchaseError {
    fn unreachable(&self) -> Option<&'static str> {
        match self {
            PurchaseError::Engine(e) => e.unreachable(),
            PurchaseError::Sale(e) => e.unreachable(),
            PurchaseError::KeyLookup(e) => e.unreachable(),
            // The writer's database error, shared by a batch, has the `sqlx::Error` as its
            // source (writer.rs).
            PurchaseError::Commit(CommitError::Database { source, .. }) => std::error::Error::source(source)
                .and_then(|e| e.downcast_ref::<sqlx::Error>())
                .and_then(Unreachable::unreachable),
            PurchaseError::Commit(
                CommitError::Stopped | CommitError::ReservationLost { .. } | CommitError::Undecided { .. },
            )
            | PurchaseError::OrderMissing(_) => None,
            PurchaseError::OrderStatus { source, .. } => source.unreachable(),
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::{http::StatusCode, response::IntoResponse};
    use goodsmall_sale::EngineError;

    use super::*;

    fn redis_down() -> EngineError {
        EngineError::Redis(std::io::Error::from(std::io::ErrorKind::ConnectionRefused).into())
    }

    fn answer(e: ApiError) -> (StatusCode, Option<String>, String) {
        let chain = e.cause_chain().unwrap_or_default();
        let response = e.into_response();
        let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
        (response.status(), retry_after, chain)
    }

    #[test]
    fn an_unreachable_dependency_is_a_503_with_retry_after_and_the_cause_kept() {
        let (status, retry_after, chain) = answer(PurchaseError::Engine(redis_down()).into());
        assert_eq!((status, retry_after.as_deref()), (StatusCode::SERVICE_UNAVAILABLE, Some("1")));
        assert!(chain.starts_with("purchase: the stock engine failed: stock engine (Redis)"), "{chain}");
        let sale_down = PurchaseError::Sale(SalesError::Database(sqlx::Error::PoolTimedOut));
        let error = ApiError::from(sale_down);
        assert_eq!((error.code, error.detail.as_str()), (ErrorCode::ServiceUnavailable, "the database is unavailable"));
        assert!(std::error::Error::source(&error).is_some_and(|e| e.downcast_ref::<PurchaseError>().is_some()));
        let (status, ..) = answer(PurchaseError::KeyLookup(sqlx::Error::PoolClosed).into());
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        let (status, ..) = answer(SalesError::Engine(redis_down()).into());
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        let status_down =
            PurchaseError::OrderStatus { order_id: "o1".into(), source: sqlx::Error::PoolTimedOut.into() };
        assert_eq!(answer(status_down.into()).0, StatusCode::SERVICE_UNAVAILABLE);
    }

    #[test]
    fn anything_unexpected_is_a_500_whose_cause_carries_the_whole_chain() {
        let (status, retry_after, chain) = answer(PurchaseError::OrderMissing("o1".into()).into());
        assert_eq!((status, retry_after), (StatusCode::INTERNAL_SERVER_ERROR, None));
        assert_eq!(chain, "purchase: order o1 is not recorded");
        let corrupt =
            SalesError::UnknownOrderStatus { sale_id: 7, source: crate::domain::UnknownOrderStatus("SHIPPED".into()) };
        let (status, _, chain) = answer(PurchaseError::Sale(corrupt).into());
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            chain,
            "purchase: reading the sale failed: an order of sale 7 has a status this release does not \
            know: unknown order status \"SHIPPED\""
        );
        let (status, ..) = answer(PurchaseError::Engine(EngineError::Protocol("?".into())).into());
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        let (status, ..) = answer(PurchaseError::Commit(CommitError::Stopped).into());
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn a_manifest_without_a_sale_is_sale_not_found() {
        let error = ApiError::from(SalesError::NoFlashSale("shop/drop".into()));
        assert_eq!((error.code, error.detail.as_str()), (ErrorCode::SaleNotFound, "no sale for flashsale shop/drop"));
    }
}
