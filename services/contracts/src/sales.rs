//! A sale as the order service records it and answers it.

use chrono::{DateTime, Utc};
use goodsmall_platform::money::Price;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Sale {
    pub id: i64,
    pub product_id: i64,
    pub merchant_id: i64,
    pub stock: i64,
    pub price: Price,
    pub opens_at: DateTime<Utc>,
    pub closes_at: DateTime<Utc>,
    pub per_user_limit: i64,
    pub closed_at: Option<DateTime<Utc>>,
}

/// A sale's terms; also the body of the operator's `PUT` on the internal API.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSale {
    pub product_id: i64,
    pub merchant_id: i64,
    pub stock: i64,
    pub price: Price,
    pub opens_at: DateTime<Utc>,
    pub closes_at: DateTime<Utc>,
    pub per_user_limit: i64,
}
