//! Builds the payment service from its settings, the process-wide parts and the bus.

use std::{sync::Arc, time::Duration};

use goodsmall_platform::{
    db::{Database, Migrations},
    events::{self, Bus, RelayHandle},
    service::{RunningService, ServiceParts, Shared},
};
use tokio_util::sync::CancellationToken;

use crate::{
    configuration::{PaymentSettings, ServiceConfig},
    consumer, expiry,
    payments::Payments,
    psp::SimulatedPsp,
    routes,
    state::PaymentState,
};

pub fn migrations() -> Migrations {
    Migrations { mysql: sqlx::migrate!("./migrations/mysql"), sqlite: sqlx::migrate!("./migrations/sqlite") }
}

pub struct PaymentService {
    pub parts: ServiceParts,
    pub payments: Payments,
}

pub async fn build(settings: &PaymentSettings, shared: &Shared, bus: &Bus) -> anyhow::Result<PaymentService> {
    let database = Database::connect("payment", &settings.database, &migrations(), &shared.metrics).await?;
    events::install_schema(&database).await?;
    let relay = RelayHandle::default();
    let payments =
        Payments::new(database.clone(), Arc::new(SimulatedPsp::new(settings.simulated_psp.clone())), relay.clone());
    bus.consume_batches(consumer::PaymentConsumer::new(payments.clone(), settings.timeout()));
    let workers = vec![
        events::run_relay(database.clone(), bus.clone(), relay, shared.shutdown.clone()),
        expiry::run_expiry(
            payments.clone(),
            Duration::from_millis(settings.expiry_tick_millis),
            shared.shutdown.clone(),
        ),
    ];
    let state = PaymentState { payments: payments.clone(), authenticator: shared.authenticator.clone() };
    let parts = ServiceParts { api: routes::router(state), readiness: shared.readiness(&database), workers };
    Ok(PaymentService { parts, payments })
}

/// The standalone service: its own database and port; Redis for revoked sessions.
pub async fn application(
    config: &ServiceConfig,
    bus: &Bus,
    shutdown: CancellationToken,
) -> anyhow::Result<RunningService> {
    let shared = Shared::standalone(&config.redis, &config.auth, shutdown).await?;
    let service = build(&config.payment, &shared, bus).await?;
    RunningService::bind_separate(&config.http, service.parts, &shared).await
}
