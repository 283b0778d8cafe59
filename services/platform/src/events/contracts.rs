//! Topics, event kinds and payloads shared by the services (documented in
//! `docs/events.md`). Every event of one order is keyed by the order id, so Kafka
//! keeps them in order on one partition.

use serde::{Deserialize, Serialize};

/// Order lifecycle events, produced by the order service.
pub const ORDERS_TOPIC: &str = "goodsmall.orders.v1";
/// Cart checkouts, produced by the product service; the order service makes the order.
pub const CHECKOUTS_TOPIC: &str = "goodsmall.checkouts.v1";
/// Payment outcomes, produced by the payment service.
pub const PAYMENTS_TOPIC: &str = "goodsmall.payments.v1";

pub mod kinds {
    /// A cart checkout reserved its stock (payload: [`super::OrderEvent`], no sale).
    pub const CHECKOUT_PLACED: &str = "checkout.placed";
    pub const ORDER_CREATED: &str = "order.created";
    pub const ORDER_COMPLETED: &str = "order.completed";
    pub const ORDER_FAILED: &str = "order.failed";
    pub const ORDER_CANCELED: &str = "order.canceled";
    pub const ORDER_RETURNED: &str = "order.returned";
    pub const PAYMENT_SUCCEEDED: &str = "payment.succeeded";
    pub const PAYMENT_FAILED: &str = "payment.failed";
    pub const PAYMENT_EXPIRED: &str = "payment.expired";
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderLine {
    pub product_id: i64,
    pub quantity: i64,
    pub unit_price_cents: i64,
}

/// `order.created`, `order.completed`, `order.failed`, `order.canceled`, `order.returned`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderEvent {
    pub order_id: String,
    pub user_id: i64,
    pub sale_id: Option<i64>,
    pub total_cents: i64,
    pub lines: Vec<OrderLine>,
    /// For `order.canceled`: whether it had been paid (then the payment is refunded).
    #[serde(default)]
    pub was_paid: bool,
}

/// `payment.succeeded`, `payment.failed`, `payment.expired`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentEvent {
    pub order_id: String,
    pub user_id: i64,
    pub amount_cents: i64,
    /// Why it failed, for `payment.failed`.
    #[serde(default)]
    pub reason: Option<String>,
}
