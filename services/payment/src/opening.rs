//! A payment opens when this service handles the order's `order.created` event,
//! milliseconds after the purchase's 202, whose `payment_url` a client may call at
//! once. So a request for a new order's payment waits for it briefly before the
//! answer says there is none.

use std::time::Duration;

use goodsmall_platform::clock::{now_millis, uuid_v7_millis};

use crate::payments::{Payment, PaymentError, Payments};

/// An order minted this recently may still have its payment on the way.
const NEW_ORDER: Duration = Duration::from_secs(60);
/// The longest a request waits for a new order's payment.
pub const PATIENCE: Duration = Duration::from_secs(5);
const FIRST_PAUSE: Duration = Duration::from_millis(5);
const LONGEST_PAUSE: Duration = Duration::from_millis(250);

pub enum Lookup {
    Found(Payment),
    /// A new order whose payment did not open within [`PATIENCE`]: the event is late.
    Opening,
    Missing,
}

/// The order's payment, waiting up to [`PATIENCE`] for that of a new order (order ids
/// are UUIDv7s: they carry their creation time).
pub async fn find(payments: &Payments, order_id: &str) -> Result<Lookup, PaymentError> {
    let is_new = uuid_v7_millis(order_id).is_some_and(|minted| now_millis() - minted < NEW_ORDER.as_millis() as i64);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut pause = FIRST_PAUSE;
    loop {
        if let Some(payment) = payments.find(order_id).await? {
            return Ok(Lookup::Found(payment));
        }
        if !is_new {
            return Ok(Lookup::Missing);
        }
        if tokio::time::Instant::now() + pause > deadline {
            return Ok(Lookup::Opening);
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(LONGEST_PAUSE);
    }
}
