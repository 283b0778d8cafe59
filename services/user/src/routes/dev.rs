use axum::extract::State;
use goodsmall_platform::{
    error::{ApiError, ApiResult, ErrorCode},
    extract::{Json, Query},
};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::{mail::DevMail, state::UserState};

#[derive(Deserialize, IntoParams)]
pub struct MailboxQuery {
    /// Only mails to this address.
    pub to: Option<String>,
}

/// The dev mailbox (one-process default only): mails the shop "sent", newest first.
#[utoipa::path(get, path = "/api/dev/mailbox", tag = "dev", params(MailboxQuery), responses((status = 200,
    body = Vec<DevMail>)))]
pub async fn mailbox(
    State(state): State<UserState>,
    Query(query): Query<MailboxQuery>,
) -> ApiResult<Json<Vec<DevMail>>> {
    let mailbox = state
        .dev_mailbox
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "the dev mailbox exists only in the one-process default"))?;
    Ok(Json(mailbox.list(query.to.as_deref())))
}
