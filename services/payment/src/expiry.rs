//! Unpaid payments expire on a timer: each past its deadline moves to EXPIRED with its
//! `payment.expired`, which cancels the order.

use std::time::Duration;

use goodsmall_platform::error::chain;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::payments::Payments;

pub fn run_expiry(payments: Payments, every: Duration, shutdown: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match payments.expire_due().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(expired = n, "unpaid payments expired"),
                Err(e) => tracing::warn!(error = %chain(&e), "payment expiry failed"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
        }
    })
}
