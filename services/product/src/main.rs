//! `goodsmall-product`: the product service on its own (MySQL + Redis).

use clap::Parser;
use goodsmall_platform::{http::shutdown_on_signal, telemetry};
use goodsmall_product::{configuration::ServiceConfig, startup};

#[derive(Parser)]
#[command(version, about = "GoodsMall product service (catalogue, stock, cart)")]
struct Cli {}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    Cli::parse();
    let config = ServiceConfig::load().unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2)
    });
    telemetry::init(&config.log);
    let shutdown = shutdown_on_signal();
    let bus = goodsmall_platform::service::event_bus(Some(&config.kafka), shutdown.clone()).await?;
    let running = startup::application(&config, &bus, shutdown).await?;
    tracing::info!(address = %running.local_addr(), "product service listening");
    running.run().await
}
