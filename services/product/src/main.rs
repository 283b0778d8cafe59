//! `goodsmall-product`: the product service on its own (MySQL + Redis).

use clap::Parser;
use goodsmall_platform::service::serve_standalone;
use goodsmall_product::{configuration::ServiceConfig, startup};

#[derive(Parser)]
#[command(version, about = "GoodsMall product service (catalogue, stock, cart)")]
struct Cli {}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    Cli::parse();
    serve_standalone::<ServiceConfig>("product", startup::application).await
}
