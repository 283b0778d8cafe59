use std::{sync::Arc, time::Duration};

use goodsmall_platform::{clock::now_millis, db::Database, error::chain};
use prometheus::IntCounterVec;
use sqlx::Row;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::MailTransport;

/// How long a claimed mail is reserved for one sender before another may retry it.
const LEASE_MS: i64 = 60_000;
/// Dead letters keep their row (for the operator) but are never due again.
const DEAD: i64 = i64::MAX;

#[derive(Debug, Clone)]
pub struct OutgoingMail {
    pub recipient: String,
    pub subject: String,
    pub body: String,
}

#[derive(Clone)]
pub struct MailOutbox {
    db: Database,
    wake: Arc<Notify>,
    max_attempts: i64,
    deliveries: IntCounterVec,
}

impl MailOutbox {
    pub fn new(db: Database, max_attempts: u32) -> Result<Self, prometheus::Error> {
        let deliveries = IntCounterVec::new(
            prometheus::Opts::new("mail_deliveries_total", "Mail delivery attempts by outcome"),
            &["outcome"],
        )?;
        // Registration fails only when registered already (several services in a test process).
        let _ = db.metrics().registry().register(Box::new(deliveries.clone()));
        Ok(Self { db, wake: Arc::new(Notify::new()), max_attempts: max_attempts.into(), deliveries })
    }

    pub async fn enqueue(&self, mail: OutgoingMail) -> Result<(), sqlx::Error> {
        let _q = self.db.observe("mail.enqueue");
        let now = now_millis();
        sqlx::query(
            "INSERT INTO mail_outbox (recipient, subject, body, attempts, next_attempt_at, created_at) VALUES \
            (?, ?, ?, 0, ?, ?)",
        )
        .bind(mail.recipient)
        .bind(mail.subject)
        .bind(mail.body)
        .bind(now)
        .bind(now)
        .execute(self.db.pool())
        .await?;
        self.wake.notify_one();
        Ok(())
    }

    /// Sends what is due; returns how many mails were attempted.
    async fn deliver_due(&self, transport: &MailTransport) -> Result<usize, sqlx::Error> {
        let now = now_millis();
        let due = {
            let _q = self.db.observe("mail.due");
            sqlx::query(
                "SELECT id, recipient, subject, body, attempts, next_attempt_at FROM mail_outbox WHERE \
                next_attempt_at <= ? ORDER BY id LIMIT 20",
            )
            .bind(now)
            .fetch_all(self.db.pool())
            .await?
        };
        for row in &due {
            let id: i64 = row.try_get("id")?;
            let attempts: i64 = row.try_get::<i64, _>("attempts")? + 1;
            // Claim with a compare-and-set on the due time: with several replicas,
            // exactly one of them wins each mail.
            let claimed = {
                let _q = self.db.observe("mail.claim");
                sqlx::query(
                    "UPDATE mail_outbox SET next_attempt_at = ?, attempts = ? WHERE id = ? AND next_attempt_at = ?",
                )
                .bind(now + LEASE_MS)
                .bind(attempts)
                .bind(id)
                .bind(row.try_get::<i64, _>("next_attempt_at")?)
                .execute(self.db.pool())
                .await?
                .rows_affected()
                    == 1
            };
            if !claimed {
                continue;
            }
            let mail = OutgoingMail {
                recipient: row.try_get("recipient")?,
                subject: row.try_get("subject")?,
                body: row.try_get("body")?,
            };
            match transport.send(&mail).await {
                Ok(()) => {
                    self.deliveries.with_label_values(&["sent"]).inc();
                    let _q = self.db.observe("mail.delete");
                    sqlx::query("DELETE FROM mail_outbox WHERE id = ?").bind(id).execute(self.db.pool()).await?;
                }
                Err(error) => {
                    let dead = attempts >= self.max_attempts;
                    self.deliveries.with_label_values(&[if dead { "dead" } else { "retry" }]).inc();
                    let error = chain(&error);
                    tracing::warn!(mail_id = id, attempts, dead, error = %error, "mail delivery failed");
                    let next = if dead { DEAD } else { now_millis() + backoff_ms(attempts) };
                    let _q = self.db.observe("mail.reschedule");
                    sqlx::query("UPDATE mail_outbox SET next_attempt_at = ?, last_error = ? WHERE id = ?")
                        .bind(next)
                        .bind(error)
                        .bind(id)
                        .execute(self.db.pool())
                        .await?;
                }
            }
        }
        Ok(due.len())
    }
}

/// 1 s, 2 s, 4 s … capped at 5 minutes.
fn backoff_ms(attempts: i64) -> i64 {
    1000 * 2i64.pow(attempts.clamp(1, 9) as u32 - 1).min(300)
}

/// Sends mail until shutdown: woken at once by `enqueue` in this process, and polling
/// every second for mail enqueued by other replicas or due for a retry.
pub async fn run_delivery_worker(outbox: MailOutbox, transport: MailTransport, shutdown: CancellationToken) {
    loop {
        match outbox.deliver_due(&transport).await {
            Ok(n) if n > 0 => continue,
            Ok(_) => {}
            Err(error) => tracing::warn!(error = %error, "mail outbox unavailable; retrying"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = outbox.wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::backoff_ms;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff_ms(1), 1000);
        assert_eq!(backoff_ms(2), 2000);
        assert_eq!(backoff_ms(5), 16000);
        assert_eq!(backoff_ms(50), 256_000);
    }
}
