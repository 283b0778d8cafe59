//! `goodsmall-order`: the order service on its own (MySQL + Redis + the event bus).

use goodsmall_order::{configuration::ServiceConfig, startup};
use goodsmall_platform::service::serve_standalone;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    serve_standalone::<ServiceConfig>(
        "order",
        "GoodsMall order service (sales, purchases, orders)",
        startup::application,
    )
    .await
}
