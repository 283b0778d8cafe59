//! `goodsmall-payment`: the payment service on its own (MySQL + Redis + the event bus).

use goodsmall_payment::{configuration::ServiceConfig, startup};
use goodsmall_platform::service::serve_standalone;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    serve_standalone::<ServiceConfig>("payment", "GoodsMall payment service (payments, expiry)", startup::application)
        .await
}
