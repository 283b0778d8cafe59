//! `goodsmall-order`: the order service on its own (MySQL + Redis + the event bus).

use clap::Parser;
use goodsmall_platform::service::serve_standalone;
use goodsmall_order::{configuration::ServiceConfig, startup};

#[derive(Parser)]
#[command(version, about = "GoodsMall order service (sales, purchases, orders)")]
struct Cli {}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    Cli::parse();
    serve_standalone::<ServiceConfig>("order", startup::application).await
}
