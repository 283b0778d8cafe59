-- One payment per order; the order id is the key end to end (and the PSP's
-- idempotency key, so a retried charge is never taken twice).
CREATE TABLE payments (
    order_id TEXT NOT NULL PRIMARY KEY,
    user_id INTEGER NOT NULL,
    amount_cents INTEGER NOT NULL,
    status TEXT NOT NULL,
    deadline_at INTEGER NOT NULL,
    reason TEXT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX payments_due ON payments (status, deadline_at);
