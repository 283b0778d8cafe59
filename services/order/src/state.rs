use axum::extract::FromRef;
use goodsmall_platform::auth::Authenticator;
use goodsmall_sale::StockEngine;

use crate::{orders::Orders, products::ProductOwners, purchase::Purchases, sales::Sales, waiting_room::WaitingRoom};

/// Everything the order service's handlers need.
#[derive(Clone, FromRef)]
pub struct OrderState {
    pub sales: Sales,
    pub orders: Orders,
    pub purchases: Purchases,
    pub waiting_room: WaitingRoom,
    pub engine: StockEngine,
    /// Who sells a product (the product service's answer), checked before a sale is made.
    pub products: ProductOwners,
    pub authenticator: Authenticator,
    pub return_window_secs: u64,
}
