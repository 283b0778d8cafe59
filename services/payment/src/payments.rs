//! Payments: created PENDING when an order is created, then settled exactly once by
//! the shopper's payment, the expiry worker or a cancellation. Every settlement is a
//! conditional update committed with its `payment.*` event.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use goodsmall_platform::{
    clock::{now_millis, to_datetime, TimeOutOfRange},
    db::{affected, Database, ROWS_PER_STATEMENT},
    error::Unreachable,
    events::{
        self,
        contracts::{kinds, PaymentEvent, PAYMENTS_TOPIC},
        Event, RelayHandle,
    },
    money::Price,
};
use serde::Serialize;
use sqlx::{Any, QueryBuilder, Row, Transaction};
use utoipa::ToSchema;

use crate::psp::{ChargeOutcome, PaymentProvider, PspError};

/// What the payments store can fail with; its answers are in `routes/mod.rs`.
#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    #[error("payments: the database failed")]
    Database(#[from] sqlx::Error),
    #[error("payment of order {order_id}: its status")]
    UnknownStatus {
        order_id: String,
        #[source]
        source: UnknownPaymentStatus,
    },
    #[error("payment of order {order_id}: deadline_at")]
    CorruptTime {
        order_id: String,
        #[source]
        source: TimeOutOfRange,
    },
    #[error("payments: the provider failed")]
    Provider(#[from] PspError),
    #[error("payment {0} vanished")]
    Vanished(String),
}

impl Unreachable for PaymentError {
    fn unreachable(&self) -> Option<&'static str> {
        match self {
            PaymentError::Database(e) => e.unreachable(),
            PaymentError::UnknownStatus { .. }
            | PaymentError::CorruptTime { .. }
            | PaymentError::Provider(_)
            | PaymentError::Vanished(_) => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PaymentStatus {
    Pending,
    Succeeded,
    Failed,
    Expired,
    Canceled,
    Refunded,
}

impl PaymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Succeeded => "SUCCEEDED",
            Self::Failed => "FAILED",
            Self::Expired => "EXPIRED",
            Self::Canceled => "CANCELED",
            Self::Refunded => "REFUNDED",
        }
    }

    /// A stored status; anything else is an error naming it (read as PENDING, a
    /// settled payment could be paid or expired again).
    fn parse(s: &str) -> Result<Self, UnknownPaymentStatus> {
        [Self::Pending, Self::Succeeded, Self::Failed, Self::Expired, Self::Canceled, Self::Refunded]
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownPaymentStatus(s.to_owned()))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown payment status {0:?}")]
pub struct UnknownPaymentStatus(pub String);

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Payment {
    pub order_id: String,
    pub user_id: i64,
    pub amount: Price,
    pub status: PaymentStatus,
    /// Pay before this, or the order is cancelled.
    pub deadline_at: DateTime<Utc>,
    pub reason: Option<String>,
}

impl Payment {
    fn event(&self, reason: Option<String>) -> PaymentEvent {
        PaymentEvent {
            order_id: self.order_id.clone(),
            user_id: self.user_id,
            amount_cents: self.amount.cents(),
            reason,
        }
    }
}

/// A payment to open: what the order costs and when it must be paid by.
#[derive(Debug, Clone)]
pub struct Due {
    pub order_id: String,
    pub user_id: i64,
    pub amount_cents: i64,
    pub deadline_ms: i64,
}

#[derive(Clone)]
pub struct Payments {
    db: Database,
    psp: Arc<dyn PaymentProvider>,
    relay: RelayHandle,
}

impl Payments {
    pub fn new(db: Database, psp: Arc<dyn PaymentProvider>, relay: RelayHandle) -> Self {
        Self { db, psp, relay }
    }

    pub fn database(&self) -> &Database {
        &self.db
    }

    /// Payments fall due for new orders, with one multi-row statement per
    /// [`ROWS_PER_STATEMENT`] (the saga opens a burst of them in one transaction).
    /// Idempotent by the natural key: an order that already has its payment (whatever
    /// its status), or appears twice, gets one; the statement skips the order ids that
    /// are there (`ON DUPLICATE KEY` / `ON CONFLICT ... DO NOTHING` on the primary key,
    /// no read first). Should another replica open one meanwhile, the insert waits for
    /// its commit and then skips it.
    pub async fn open_all(&self, tx: &mut Transaction<'_, Any>, dues: &[Due]) -> Result<(), sqlx::Error> {
        let _q = self.db.observe("payment.open_all");
        let now = now_millis();
        let status = PaymentStatus::Pending.as_str();
        let skip_existing = if self.db.is_mysql() {
            " ON DUPLICATE KEY UPDATE order_id = order_id"
        } else {
            " ON CONFLICT (order_id) DO NOTHING"
        };
        for chunk in dues.chunks(ROWS_PER_STATEMENT) {
            let mut insert = QueryBuilder::new(
                "INSERT INTO payments (order_id, user_id, amount_cents, status, deadline_at, created_at, updated_at) ",
            );
            insert.push_values(chunk, |mut row, due| {
                row.push_bind(&due.order_id)
                    .push_bind(due.user_id)
                    .push_bind(due.amount_cents)
                    .push_bind(status)
                    .push_bind(due.deadline_ms)
                    .push_bind(now)
                    .push_bind(now);
            });
            insert.push(skip_existing);
            insert.build().execute(&mut **tx).await?;
        }
        Ok(())
    }

    pub async fn find(&self, order_id: &str) -> Result<Option<Payment>, PaymentError> {
        let _q = self.db.observe("payment.find");
        let row = sqlx::query(
            "SELECT order_id, user_id, amount_cents, status, deadline_at, reason FROM payments WHERE order_id = ?",
        )
        .bind(order_id)
        .fetch_optional(self.db.pool())
        .await?;
        row.map(|r| {
            Ok(Payment {
                order_id: r.try_get("order_id")?,
                user_id: r.try_get("user_id")?,
                amount: Price::from_cents(r.try_get("amount_cents")?),
                status: PaymentStatus::parse(&r.try_get::<String, _>("status")?)
                    .map_err(|source| PaymentError::UnknownStatus { order_id: order_id.to_owned(), source })?,
                deadline_at: to_datetime(r.try_get("deadline_at")?)
                    .map_err(|source| PaymentError::CorruptTime { order_id: order_id.to_owned(), source })?,
                reason: r.try_get("reason")?,
            })
        })
        .transpose()
    }

    /// Moves `from` → `to` and, when it moved, appends the event: one transaction.
    pub async fn settle(
        &self,
        payment: &Payment,
        from: PaymentStatus,
        to: PaymentStatus,
        event_kind: Option<&str>,
        reason: Option<String>,
    ) -> Result<bool, PaymentError> {
        let mut tx = self.db.pool().begin().await?;
        let moved = Self::settle_in(&mut tx, &payment.order_id, from, to, reason.as_deref()).await?;
        if let (true, Some(kind)) = (moved, event_kind) {
            events::append(&mut tx, Event::new(PAYMENTS_TOPIC, kind, &payment.order_id, payment.event(reason))).await?;
        }
        tx.commit().await?;
        if moved {
            self.relay.wake();
            if let Some(outcome) = outcome_of(to) {
                self.db.metrics().drops().payment(outcome);
            }
        }
        Ok(moved)
    }

    pub async fn settle_in(
        tx: &mut Transaction<'_, Any>,
        order_id: &str,
        from: PaymentStatus,
        to: PaymentStatus,
        reason: Option<&str>,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE payments SET status = ?, reason = COALESCE(?, reason), updated_at = ? WHERE \
            order_id = ? AND status = ?",
        )
        .bind(to.as_str())
        .bind(reason)
        .bind(now_millis())
        .bind(order_id)
        .bind(from.as_str())
        .execute(&mut **tx)
        .await?;
        Ok(affected(&done) == 1)
    }

    /// The shopper pays. Charging is idempotent per order at the provider, so a
    /// retried or concurrent call never takes the money twice; the first settlement
    /// wins and the answer is always the payment as it now stands.
    pub async fn pay(&self, payment: Payment) -> Result<Payment, PaymentError> {
        if payment.status != PaymentStatus::Pending || payment.deadline_at.timestamp_millis() <= now_millis() {
            return Ok(payment);
        }
        let outcome = self.psp.charge(&payment.order_id, payment.amount.cents()).await?;
        let settled = match &outcome {
            ChargeOutcome::Charged => {
                self.settle(
                    &payment,
                    PaymentStatus::Pending,
                    PaymentStatus::Succeeded,
                    Some(kinds::PAYMENT_SUCCEEDED),
                    None,
                )
                .await?
            }
            ChargeOutcome::Declined(why) => {
                self.settle(
                    &payment,
                    PaymentStatus::Pending,
                    PaymentStatus::Failed,
                    Some(kinds::PAYMENT_FAILED),
                    Some(why.clone()),
                )
                .await?
            }
        };
        if !settled && outcome == ChargeOutcome::Charged {
            // It expired or was cancelled meanwhile: the order is released, give the money back.
            let current = self.find(&payment.order_id).await?;
            if current.as_ref().is_some_and(|p| p.status != PaymentStatus::Succeeded) {
                self.psp.refund(&payment.order_id, payment.amount.cents()).await?;
            }
        }
        self.find(&payment.order_id).await?.ok_or(PaymentError::Vanished(payment.order_id))
    }

    /// The order was cancelled: a pending payment is closed, a taken one refunded.
    pub async fn cancel(&self, order_id: &str) -> Result<(), PaymentError> {
        let Some(payment) = self.find(order_id).await? else { return Ok(()) };
        if self.settle(&payment, PaymentStatus::Pending, PaymentStatus::Canceled, None, None).await? {
            return Ok(());
        }
        if payment.status == PaymentStatus::Succeeded
            || self.find(order_id).await?.is_some_and(|p| p.status == PaymentStatus::Succeeded)
        {
            self.psp.refund(order_id, payment.amount.cents()).await?;
            self.settle(&payment, PaymentStatus::Succeeded, PaymentStatus::Refunded, None, None).await?;
        }
        Ok(())
    }

    /// Pending payments past their deadline expire (each with `payment.expired`).
    pub async fn expire_due(&self) -> Result<usize, PaymentError> {
        let rows = {
            let _q = self.db.observe("payment.due");
            sqlx::query(
                "SELECT order_id FROM payments WHERE status = ? AND deadline_at <= ? ORDER BY deadline_at LIMIT 500",
            )
            .bind(PaymentStatus::Pending.as_str())
            .bind(now_millis())
            .fetch_all(self.db.pool())
            .await?
        };
        let mut expired = 0;
        for row in rows {
            let order_id: String = row.try_get("order_id")?;
            if let Some(payment) = self.find(&order_id).await? {
                let reason = Some("not paid in time".to_owned());
                if self
                    .settle(
                        &payment,
                        PaymentStatus::Pending,
                        PaymentStatus::Expired,
                        Some(kinds::PAYMENT_EXPIRED),
                        reason,
                    )
                    .await?
                {
                    expired += 1;
                }
            }
        }
        Ok(expired)
    }
}

/// `goodsmall_payments_total{outcome}` for a settlement that moved a payment to `to`.
fn outcome_of(to: PaymentStatus) -> Option<&'static str> {
    match to {
        PaymentStatus::Succeeded => Some("approved"),
        PaymentStatus::Failed => Some("declined"),
        PaymentStatus::Expired => Some("expired"),
        PaymentStatus::Canceled => Some("canceled"),
        PaymentStatus::Refunded => Some("refunded"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use goodsmall_platform::{configuration::DatabaseSettings, metrics::Metrics};

    use super::*;
    use crate::{configuration::SimulatedPspSettings, psp::SimulatedPsp};

    /// A row this code did not write is an error naming the bad value, never read as a
    /// PENDING payment (payable again) or one due in 1970.
    #[tokio::test]
    async fn a_stored_value_that_does_not_parse_is_an_error() {
        let settings = DatabaseSettings {
            url: goodsmall_testkit::sqlite_url("payment-values").into(),
            max_connections: 1,
            create_if_missing: true,
        };
        let db = Database::connect("payment", &settings, &crate::startup::migrations(), &Metrics::new()).await.unwrap();
        let psp = SimulatedPsp::new(SimulatedPspSettings { failure_rate: 0.0, latency_millis: 0 });
        let payments = Payments::new(db.clone(), Arc::new(psp), RelayHandle::default());
        let mut tx = db.pool().begin().await.unwrap();
        payments
            .open_all(
                &mut tx,
                &[Due { order_id: "o1".into(), user_id: 7, amount_cents: 4_900, deadline_ms: now_millis() }],
            )
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let set = |sql: &'static str| {
            let db = db.clone();
            async move { sqlx::query(sql).execute(db.pool()).await.unwrap() }
        };

        set("UPDATE payments SET status = 'PAID'").await;
        let error = payments.find("o1").await.expect_err("an unknown status");
        assert!(
            matches!(&error, PaymentError::UnknownStatus { source, .. }
                if *source == UnknownPaymentStatus("PAID".into())),
            "{error:?}"
        );

        set("UPDATE payments SET status = 'SUCCEEDED', deadline_at = -9000000000000000000").await;
        let error = payments.find("o1").await.expect_err("a time out of range");
        assert!(
            matches!(&error, PaymentError::CorruptTime { source, .. }
                if *source == TimeOutOfRange(-9_000_000_000_000_000_000)),
            "{error:?}"
        );
    }
}
