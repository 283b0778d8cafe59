//! `goodsmall-product`: the product service on its own (MySQL + Redis).

use goodsmall_platform::service::serve_standalone;
use goodsmall_product::{configuration::ServiceConfig, startup};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    serve_standalone::<ServiceConfig>(
        "product",
        "GoodsMall product service (catalogue, stock, cart)",
        startup::application,
    )
    .await
}
