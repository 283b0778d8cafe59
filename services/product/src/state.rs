use axum::extract::FromRef;
use goodsmall_platform::auth::Authenticator;

use crate::{cart::Carts, catalogue::Catalogue, checkout::Checkouts, detail_cache::DetailCache, stock::LiveStock};

/// Everything the product service's handlers need.
#[derive(Clone, FromRef)]
pub struct ProductState {
    pub catalogue: Catalogue,
    pub details: DetailCache,
    pub stock: LiveStock,
    pub carts: Carts,
    pub checkouts: Checkouts,
    pub authenticator: Authenticator,
}
