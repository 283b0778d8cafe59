-- One payment per order; the order id is the key end to end (and the PSP's
-- idempotency key, so a retried charge is never taken twice).
CREATE TABLE payments (
    order_id CHAR(36) NOT NULL PRIMARY KEY,
    user_id BIGINT NOT NULL,
    amount_cents BIGINT NOT NULL,
    status VARCHAR(16) NOT NULL,
    deadline_at BIGINT NOT NULL,
    reason VARCHAR(500) NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    KEY payments_due (status, deadline_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
