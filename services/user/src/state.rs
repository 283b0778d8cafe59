use axum::extract::FromRef;
use goodsmall_platform::auth::Authenticator;

use crate::{
    accounts::Accounts,
    login_throttle::LoginThrottle,
    mail::{DevMailbox, MailOutbox},
    sessions::Sessions,
    verification::Verifications,
};

/// Everything the user service's handlers need.
#[derive(Clone, FromRef)]
pub struct UserState {
    pub accounts: Accounts,
    pub verifications: Verifications,
    pub sessions: Sessions,
    pub outbox: MailOutbox,
    pub login_throttle: LoginThrottle,
    pub authenticator: Authenticator,
    /// Present only with the dev-mailbox transport (the one-process default).
    pub dev_mailbox: Option<DevMailbox>,
}
