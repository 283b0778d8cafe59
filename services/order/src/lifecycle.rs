//! Moves paid orders through delivery and the return window on a timer. Every move is
//! a conditional update (`WHERE status = from`), so several replicas running this at
//! once never move an order twice.

use goodsmall_platform::{clock::now_millis, error::chain, events::contracts::kinds};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{
    configuration::LifecycleSettings,
    domain::OrderStatus,
    orders::{OrderRecordError, Orders},
};

pub fn run(orders: Orders, settings: LifecycleSettings, shutdown: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if let Err(e) = tick(&orders, &settings).await {
                tracing::warn!(error = %chain(&e), "order lifecycle tick failed");
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(settings.tick()) => {}
            }
        }
    })
}

/// One pass over every timed step; returns how many orders moved.
pub async fn tick(orders: &Orders, s: &LifecycleSettings) -> Result<usize, OrderRecordError> {
    let steps = [
        (OrderStatus::Complete, OrderStatus::DeliveryNow, s.ship_after_secs, None),
        (OrderStatus::DeliveryNow, OrderStatus::DeliveryComplete, s.deliver_after_secs, None),
        (OrderStatus::DeliveryComplete, OrderStatus::ReturnNotAllowed, s.return_window_secs, None),
        (
            OrderStatus::ReturnNow,
            OrderStatus::ReturnComplete,
            s.return_complete_after_secs,
            Some(kinds::ORDER_RETURNED),
        ),
    ];
    let mut moved = 0;
    for (from, to, after_secs, event) in steps {
        let cutoff = now_millis() - (after_secs as i64) * 1000;
        for id in orders.due(from, cutoff, 500).await? {
            if orders.transition(&id, &[from], to, event.map(|kind| (kind, true))).await? {
                moved += 1;
            }
        }
    }
    Ok(moved)
}
