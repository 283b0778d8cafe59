//! The payment service provider behind a trait, so a real PSP adapter can replace the
//! simulated one. Providers must be idempotent per order id (real PSPs take an
//! idempotency key): charging the same order twice takes the money once.

use std::{
    future::Future,
    hash::{Hash, Hasher},
    pin::Pin,
    time::Duration,
};

use goodsmall_platform::error::Cause;

use crate::configuration::SimulatedPspSettings;

/// A provider that did not give an answer (a real adapter's network or API failure),
/// with that failure as its source.
#[derive(Debug, thiserror::Error)]
#[error("the payment provider failed")]
pub struct PspError(#[source] pub Cause);

pub type PspFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, PspError>> + Send + 'a>>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChargeOutcome {
    Charged,
    Declined(String),
}

pub trait PaymentProvider: Send + Sync {
    fn charge<'a>(&'a self, order_id: &'a str, amount_cents: i64) -> PspFuture<'a, ChargeOutcome>;
    fn refund<'a>(&'a self, order_id: &'a str, amount_cents: i64) -> PspFuture<'a, ()>;
}

/// Declines a configurable share of charges after a configurable delay. The outcome
/// is a pure function of the order id, so a retried charge gets the same answer, as
/// with a real, idempotent provider.
pub struct SimulatedPsp {
    settings: SimulatedPspSettings,
}

impl SimulatedPsp {
    pub fn new(settings: SimulatedPspSettings) -> Self {
        Self { settings }
    }

    fn declines(&self, order_id: &str) -> bool {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        order_id.hash(&mut hasher);
        (hasher.finish() % 10_000) as f64 / 10_000.0 < self.settings.failure_rate
    }
}

impl PaymentProvider for SimulatedPsp {
    fn charge<'a>(&'a self, order_id: &'a str, _amount_cents: i64) -> PspFuture<'a, ChargeOutcome> {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(self.settings.latency_millis)).await;
            Ok(if self.declines(order_id) {
                ChargeOutcome::Declined("card declined (simulated)".into())
            } else {
                ChargeOutcome::Charged
            })
        })
    }

    fn refund<'a>(&'a self, _order_id: &'a str, _amount_cents: i64) -> PspFuture<'a, ()> {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(self.settings.latency_millis)).await;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_failure_rate_holds_and_retries_agree() {
        let psp = SimulatedPsp::new(SimulatedPspSettings { failure_rate: 0.2, latency_millis: 0 });
        let mut declined = 0;
        for i in 0..2000 {
            let id = format!("order-{i}");
            let first = psp.charge(&id, 100).await.unwrap();
            assert_eq!(psp.charge(&id, 100).await.unwrap(), first, "a retry gets the same answer");
            declined += usize::from(first != ChargeOutcome::Charged);
        }
        assert!((300..500).contains(&declined), "about 20 % of 2000 declined, got {declined}");
        let never = SimulatedPsp::new(SimulatedPspSettings { failure_rate: 0.0, latency_millis: 0 });
        assert_eq!(never.charge("x", 1).await.unwrap(), ChargeOutcome::Charged);
    }
}
