use std::{ops::Deref, sync::Arc};

use axum::extract::FromRef;
use goodsmall_platform::auth::Authenticator;
use goodsmall_sale::StockEngine;

use crate::{orders::Orders, products::ProductOwners, purchase::Purchases, sales::Sales, waiting_room::WaitingRoom};

/// Everything the order service's handlers need, behind one `Arc`: axum clones a
/// route's state for every request (twice), and the parts hold Redis connection
/// managers, pools and metrics handles whose clones were a quarter of the instructions
/// of a sold-out refusal (docs/benchmarks.md).
#[derive(Clone)]
pub struct OrderState(Arc<OrderParts>);

/// What [`OrderState`] shares.
pub struct OrderParts {
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

impl OrderState {
    pub fn new(parts: OrderParts) -> Self {
        Self(Arc::new(parts))
    }
}

impl Deref for OrderState {
    type Target = OrderParts;

    fn deref(&self) -> &OrderParts {
        &self.0
    }
}

/// The extractors that take a part of the state (the token checks).
impl FromRef<OrderState> for Authenticator {
    fn from_ref(state: &OrderState) -> Self {
        state.authenticator.clone()
    }
}
