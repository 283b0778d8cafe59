//! Thin HTTP handlers: parse the request into domain types, call one module, shape
//! the answer.

mod auth;
mod dev;
mod users;

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::state::UserState;

pub fn router(state: UserState) -> OpenApiRouter {
    let dev = state.dev_mailbox.is_some();
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
    router.with_state(state)
}
