//! Thin HTTP handlers: parse the request into domain types, call one module, shape
//! the answer.

mod auth;
mod dev;
mod users;

use goodsmall_platform::error::{ApiError, ErrorCode};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{accounts::AccountError, state::UserState};

pub fn router(state: UserState) -> OpenApiRouter {
    routes(state.dev_mailbox.is_some()).with_state(state)
}

/// This service's part of the public API document (docs/openapi.json), which never
/// lists the dev mailbox: it is routed only with `values-dev.yaml`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes(false).into_openapi()
}

fn routes(dev: bool) -> OpenApiRouter<UserState> {
    let mut router = OpenApiRouter::new()
        .routes(routes!(auth::request_code))
        .routes(routes!(auth::confirm_code))
        .routes(routes!(auth::login))
        .routes(routes!(auth::refresh))
        .routes(routes!(auth::logout))
        .routes(routes!(users::sign_up))
        .routes(routes!(users::me, users::update_me))
        .routes(routes!(users::change_password));
    if dev {
        router = router.routes(routes!(dev::mailbox));
    }
    router
}

/// The accounts store's errors' answers, in one place: a taken e-mail is `EMAIL_TAKEN`,
/// a database that does not answer a 503, anything else a 500 (the error is kept as
/// the answer's cause).
impl From<AccountError> for ApiError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::EmailTaken => ApiError::new(ErrorCode::EmailTaken, "log in, or use another e-mail"),
            AccountError::Database(db) => ApiError::from(db),
            AccountError::Crypto(_) | AccountError::CorruptTime { .. } => ApiError::internal(e),
        }
    }
}
