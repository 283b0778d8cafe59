//! `goodsmall`: the whole shop in one process.

use clap::Parser;
use goodsmall_operator::local::cli::FlashSaleCli;
use goodsmall_platform::{configuration::Settings, http::shutdown_on_signal, telemetry};
use goodsmall_shop::{
    configuration::ShopConfig,
    startup::{Shop, DEMO_MERCHANT_EMAIL, DEMO_MERCHANT_PASSWORD},
};

#[derive(Parser)]
#[command(version, about = "GoodsMall: the whole flash-sale shop in one process")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Apply, list or delete FlashSale manifests on a running shop (its `kubectl`).
    Flashsale(FlashSaleCli),
}

/// Many small allocations per request on many threads: mimalloc spends far less CPU on
/// them than glibc's malloc (measured in docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if let Some(Command::Flashsale(cli)) = Cli::parse().command {
        match cli.run().await {
            Ok(out) => println!("{out}"),
            Err(e) => {
                eprintln!("{e:#}");
                std::process::exit(1)
            }
        }
        return Ok(());
    }
    let config = ShopConfig::load().unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2)
    });
    telemetry::init(&config.log);
    let demo = config.demo;
    let data_dir = config.data_dir.clone();
    let shop = Shop::build(config, shutdown_on_signal()).await?;
    let base = format!("http://{}", shop.local_addr());
    println!("\nGoodsMall is running (data in {}, key-value store: {})", data_dir.display(), shop.kv_backend);
    println!("  API            {base}/api");
    println!("  OpenAPI        {base}/api/openapi.json");
    println!("  Metrics        {base}/metrics");
    println!("  Health         {base}/healthz  {base}/readyz");
    if shop.dev_mailbox {
        println!("  Dev mailbox    {base}/api/dev/mailbox   (verification codes land here)");
    }
    if demo {
        println!("  Demo merchant  {DEMO_MERCHANT_EMAIL} / {DEMO_MERCHANT_PASSWORD}");
    }
    if let Some(sale_id) = shop.demo_sale_id {
        println!("  Demo drop      {base}/api/sales/{sale_id}   (open now, 100 units, 2 per shopper)");
    }
    println!("Stop with Ctrl-C.\n");
    shop.run().await
}
