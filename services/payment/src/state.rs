use axum::extract::FromRef;
use goodsmall_platform::auth::Authenticator;

use crate::payments::Payments;

#[derive(Clone, FromRef)]
pub struct PaymentState {
    pub payments: Payments,
    pub authenticator: Authenticator,
}
