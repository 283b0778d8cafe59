//! Builds every service into one process: one port, one `/metrics`, one OpenAPI
//! document, the same routers and workers the separate services run.

use anyhow::Context as _;
use chrono::{Duration, Utc};
use goodsmall_operator::local::{store, CatalogueFn};
use goodsmall_order::{products::ProductOwners, sales::NewSale};
use goodsmall_platform::{
    auth::{Authenticator, KeyPair, Role},
    configuration::ExposeSecret,
    db::Database,
    http::Readiness,
    kv::Kv,
    metrics::Metrics,
    money::Price,
    service::{RunningService, ServiceParts, Shared},
};
use goodsmall_sale::StockEngine;
use goodsmall_user::{configuration::BootstrapAccount, domain::Email};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

use crate::configuration::{LocalOperatorSettings, ShopConfig};

pub const DEMO_MERCHANT_EMAIL: &str = "merchant@goodsmall.dev";
pub const DEMO_MERCHANT_PASSWORD: &str = "demo-merchant-1";

pub struct Shop {
    running: RunningService,
    pub kv_backend: &'static str,
    pub dev_mailbox: bool,
    /// The demo drop, when this start created it.
    pub demo_sale_id: Option<i64>,
}

impl Shop {
    pub async fn build(config: ShopConfig, shutdown: CancellationToken) -> anyhow::Result<Self> {
        let metrics = Metrics::new();
        // The in-process FlashSale operator's series, as the cluster operator serves them.
        metrics.also_render(|| goodsmall_operator::metrics::local().render());
        let kv = match &config.redis {
            Some(redis) => Kv::redis(redis.url.expose_secret()).await?,
            None => Kv::memory(),
        }
        .with_metrics(metrics.clone());
        // Given, or read from the data folder by the configuration.
        let keys = KeyPair {
            private_pem: config.auth.private_key("auth")?.expose_secret().to_owned(),
            public_pem: config.auth.public_key("auth")?,
        };
        let issuer = config.auth.issuer();
        let authenticator = Authenticator::new(&keys.public_pem, &issuer, kv.clone())?;
        // One process: the services share the stock engine and the event bus (in-process
        // unless Kafka is configured), each fed by its service's own outbox.
        let engine = StockEngine::for_connection(kv.redis_connection()).with_metrics(metrics.registry());
        let bus = goodsmall_platform::service::event_bus(config.kafka.as_ref(), shutdown.clone()).await?;
        let shared = Shared { metrics, kv: kv.clone(), authenticator, shutdown };

        let users = goodsmall_user::startup::build(&config.user, &keys.private_pem, issuer, &shared).await?;
        let products = goodsmall_product::startup::build(&config.product, &shared, &bus, engine.clone()).await?;
        let owners = product_owners(&products.state.catalogue);
        let orders =
            goodsmall_order::startup::build(&config.order, &shared, &bus, engine.clone(), owners.clone()).await?;
        let payments = goodsmall_payment::startup::build(&config.payment, &shared, &bus).await?;
        let mut demo_sale_id = None;
        if config.demo {
            let merchant = BootstrapAccount {
                email: DEMO_MERCHANT_EMAIL.into(),
                password: DEMO_MERCHANT_PASSWORD.into(),
                name: "Demo Merchant".into(),
            };
            goodsmall_user::startup::bootstrap(&users.accounts, &merchant, Role::Merchant).await?;
            let email = Email::parse(DEMO_MERCHANT_EMAIL).map_err(anyhow::Error::msg)?;
            let merchant_id =
                users.accounts.credentials(&email).await?.ok_or_else(|| anyhow::anyhow!("demo merchant missing"))?.id;
            if let Some(product_id) = products.seed_demo(merchant_id).await? {
                demo_sale_id = Some(demo_drop(&orders.state.sales, product_id, merchant_id).await?);
            }
        }
        let dev_mailbox = config.user.mail.is_dev_mailbox();
        let flash_sales = flash_sale_operator(&config.operator, owners, &orders, engine, &shared).await?;
        let parts = users.parts.merge(products.parts).merge(orders.parts).merge(payments.parts).merge(flash_sales);
        let running = RunningService::bind(crate::openapi::TITLE, &config.http, parts, &shared).await?;
        Ok(Self { running, kv_backend: kv.backend_name(), dev_mailbox, demo_sale_id })
    }

    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.running.local_addr()
    }

    pub async fn run(self) -> anyhow::Result<()> {
        self.running.run().await
    }
}

/// Who sells a product, from the catalogue in this process: what the separate order
/// service and the cluster operator ask the product service's API.
fn product_owners(catalogue: &goodsmall_product::catalogue::Catalogue) -> ProductOwners {
    let catalogue = catalogue.clone();
    ProductOwners::in_process(move |product_id| {
        let catalogue = catalogue.clone();
        async move { Ok(catalogue.find_by_id(product_id).await?.map(|p| p.merchant_id)) }
    })
}

/// The FlashSale operator without a cluster: manifests applied over the API (or the
/// `goodsmall flashsale` CLI) run through the same reconcile as in Kubernetes, with
/// the same product check as `POST /api/sales`.
async fn flash_sale_operator(
    settings: &LocalOperatorSettings,
    owners: ProductOwners,
    orders: &goodsmall_order::startup::OrderService,
    engine: StockEngine,
    shared: &Shared,
) -> anyhow::Result<ServiceParts> {
    let manifests = Database::connect("operator", &settings.database, &store::migrations(), &shared.metrics).await?;
    store::ManifestStore::new(manifests.clone())
        .carry_over(&orders.database)
        .await
        .context("moving the FlashSale manifests out of the order database")?;
    let owner_of = CatalogueFn(move |product_id| {
        let owners = owners.clone();
        async move { Ok(owners.owner_of(product_id).await?) }
    });
    let (operator, api) = goodsmall_operator::local::build(
        manifests,
        Arc::new(orders.state.sales.clone()),
        engine,
        Arc::new(owner_of),
        shared.authenticator.clone(),
    );
    Ok(ServiceParts { api, readiness: Readiness::default(), workers: vec![operator.spawn(shared.shutdown.clone())] })
}

/// The demo drop: 100 lightsticks at a sale price, open from now for a day, two per
/// shopper.
async fn demo_drop(sales: &goodsmall_order::sales::Sales, product_id: i64, merchant_id: i64) -> anyhow::Result<i64> {
    let now = Utc::now();
    let sale = sales
        .create(NewSale {
            product_id,
            merchant_id,
            stock: 100,
            price: Price::from_cents(4_900),
            opens_at: now,
            closes_at: now + Duration::days(1),
            per_user_limit: 2,
            admission: None,
        })
        .await?;
    tracing::info!(sale_id = sale.id, "demo drop added");
    Ok(sale.id)
}
