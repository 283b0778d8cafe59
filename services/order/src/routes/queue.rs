//! A sale's waiting room: join, then poll for the place and, in turn, the admission.

use axum::{
    extract::State,
    http::{header::RETRY_AFTER, HeaderValue},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use goodsmall_platform::{
    auth::{AuthUser, SignedUser},
    error::{ApiError, ApiResult, ErrorCode, Problem},
    extract::{Json, Path},
    http::ClientAddress,
};
use goodsmall_sale::{SaleId, UserId};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{
    state::OrderState,
    waiting_room::{Answer, Ticket},
};

/// The header a purchase from a sale with a waiting room carries its admission in.
pub const ADMISSION_TOKEN: &str = "admission-token";

/// Where a shopper stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum QueueState {
    /// Joined before the opening: places are drawn at random at the opening.
    PreQueue,
    Waiting,
    /// Your turn: buy with `admission.token` in the `Admission-Token` header.
    Admitted,
    /// Your turn ended before you bought.
    Expired,
    /// Nothing left, and nothing held by unpaid orders that could come back.
    SoldOut,
    Closed,
}

#[derive(Serialize, ToSchema)]
pub struct Admission {
    /// Send it as the `Admission-Token` header of your purchases; it is yours and this
    /// sale's only.
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

/// A shopper's ticket. Poll it at the interval its `Retry-After` header says.
#[derive(Serialize, ToSchema)]
pub struct QueueTicket {
    pub sale_id: i64,
    pub state: QueueState,
    /// 1 is next; only while `WAITING`.
    pub position: Option<u64>,
    /// Your number in the whole queue (1 was the first admitted), fixed from the
    /// opening; from the opening on.
    pub queue_number: Option<u64>,
    /// Shoppers who have joined so far; only in the `PRE_QUEUE`.
    pub joined: Option<u64>,
    /// Units left now, while `WAITING`: 0 means unpaid orders hold the last ones, which
    /// may come back.
    pub units_left: Option<i64>,
    /// While `WAITING` with units left: the position over the admission rate.
    pub estimated_wait_seconds: Option<u64>,
    /// When places are drawn (the sale's opening), in the `PRE_QUEUE`.
    pub opens_at: Option<DateTime<Utc>>,
    /// Only when `ADMITTED`.
    pub admission: Option<Admission>,
}

/// Join a sale's waiting room (one place per account: joining again answers the same
/// place). Shoppers who join before the opening get a uniformly random place at the
/// opening; later ones queue behind them in arrival order.
#[utoipa::path(post, path = "/api/sales/{id}/queue", tag = "queue", security(("bearer" = [])),
    params(("id" = i64, Path, minimum = 1)),
    responses((status = 200, body = QueueTicket,
               headers(("Retry-After" = u64, description = "seconds until the next poll"))),
              (status = 404, body = Problem, description = "SALE_NOT_FOUND"),
              (status = 409, body = Problem, description = "NO_WAITING_ROOM, QUEUE_NOT_OPEN, SALE_CLOSED or SOLD_OUT"),
              (status = 429, body = Problem,
               description = "TOO_MANY_ATTEMPTS: this address joined too often; after `Retry-After`")))]
pub async fn join(
    State(state): State<OrderState>,
    user: AuthUser,
    from: ClientAddress,
    Path(sale_id): Path<i64>,
) -> ApiResult<Response> {
    let sale = SaleId(sale_id);
    answer(sale, state.waiting_room.join(sale, UserId(user.user_id), from).await?)
}

/// Your place in a sale's waiting room, and your admission when it is your turn.
#[utoipa::path(get, path = "/api/sales/{id}/queue", tag = "queue", security(("bearer" = [])),
    params(("id" = i64, Path, minimum = 1)),
    responses((status = 200, body = QueueTicket,
               headers(("Retry-After" = u64, description = "seconds until the next poll"))),
              (status = 404, body = Problem, description = "SALE_NOT_FOUND or NOT_IN_QUEUE"),
              (status = 409, body = Problem, description = "NO_WAITING_ROOM")))]
pub async fn place(
    State(state): State<OrderState>,
    signed: SignedUser,
    Path(sale_id): Path<i64>,
) -> ApiResult<Response> {
    // The place is the shopper's own and changes nothing: the token's signature is
    // enough (the purchase checks for a logout).
    let sale = SaleId(sale_id);
    answer(sale, state.waiting_room.place(sale, UserId(signed.user_id())).await?)
}

fn answer(sale: SaleId, answer: Answer) -> ApiResult<Response> {
    let ticket = match answer {
        Answer::Place(ticket) => ticket,
        Answer::Refused(refusal) => return Err(refusal.into()),
        Answer::TooManyJoins(wait) => {
            return Err(ApiError::new(
                ErrorCode::TooManyAttempts,
                "this address has joined this sale's queue too often",
            )
            .retry_after(wait.as_secs().max(1)))
        }
    };
    let mut body = QueueTicket {
        sale_id: sale.0,
        state: QueueState::Closed,
        position: None,
        queue_number: None,
        joined: None,
        units_left: None,
        estimated_wait_seconds: None,
        opens_at: None,
        admission: None,
    };
    let poll_after = match ticket {
        Ticket::PreQueue { joined, opens_at } => {
            body.state = QueueState::PreQueue;
            body.joined = Some(joined);
            body.opens_at = Some(opens_at);
            Some(poll_before_opening((opens_at - Utc::now()).num_seconds()))
        }
        Ticket::Waiting { position, units_left, admit_per_second, number } => {
            let wait = (units_left > 0).then(|| position.div_ceil(admit_per_second.max(1).unsigned_abs()));
            body.state = QueueState::Waiting;
            body.position = Some(position);
            body.queue_number = Some(number);
            body.units_left = Some(units_left);
            body.estimated_wait_seconds = wait;
            Some(poll_while_waiting(wait))
        }
        Ticket::Admitted { token, turn_ends, number } => {
            body.state = QueueState::Admitted;
            body.queue_number = Some(number);
            body.admission = Some(Admission { token, expires_at: turn_ends });
            None
        }
        Ticket::Expired { number } => {
            body.state = QueueState::Expired;
            body.queue_number = Some(number);
            None
        }
        Ticket::SoldOut => {
            body.state = QueueState::SoldOut;
            None
        }
        Ticket::Closed => None,
    };
    let mut response = Json(body).into_response();
    if let Some(seconds) = poll_after {
        response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(seconds));
    }
    Ok(response)
}

/// Before the opening: not more often than every 30 s, and again right at the opening.
fn poll_before_opening(seconds_to_opening: i64) -> u64 {
    seconds_to_opening.clamp(1, 30).unsigned_abs()
}

/// While waiting: about half the estimated wait, between 1 and 10 s (a shopper who is
/// admitted notices within 10 s of a turn of at least 10 s); every 5 s while the last
/// units are held by unpaid orders.
fn poll_while_waiting(estimated_wait: Option<u64>) -> u64 {
    estimated_wait.map_or(5, |wait| (wait / 2).clamp(1, 10))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polls_are_spaced_by_what_there_is_to_wait_for() {
        assert_eq!([-5, 0, 1, 12, 3600].map(poll_before_opening), [1, 1, 1, 12, 30]);
        assert_eq!([Some(0), Some(3), Some(40), Some(1000), None].map(poll_while_waiting), [1, 1, 10, 10, 5]);
    }
}
