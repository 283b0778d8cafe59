-- A cart checkout per (shopper, Idempotency-Key): a retry finds the first order.
CREATE TABLE checkouts (
    user_id BIGINT NOT NULL,
    idempotency_key VARCHAR(200) NOT NULL,
    order_id VARCHAR(36) NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, idempotency_key)
);
