use axum::extract::FromRef;
use goodsmall_platform::auth::Authenticator;
use goodsmall_sale::StockEngine;

use crate::{orders::Orders, purchase::Purchases, sales::Sales};

/// Everything the order service's handlers need.
#[derive(Clone, FromRef)]
pub struct OrderState {
    pub sales: Sales,
    pub orders: Orders,
    pub purchases: Purchases,
    pub engine: StockEngine,
    pub authenticator: Authenticator,
    pub return_window_secs: u64,
}
