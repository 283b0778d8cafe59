//! `goodsmall-payment`: the payment service on its own (MySQL + Redis + the event bus).

use clap::Parser;
use goodsmall_platform::service::serve_standalone;
use goodsmall_payment::{configuration::ServiceConfig, startup};

#[derive(Parser)]
#[command(version, about = "GoodsMall payment service (payments, expiry)")]
struct Cli {}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    Cli::parse();
    serve_standalone::<ServiceConfig>("payment", startup::application).await
}
