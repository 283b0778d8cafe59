-- A cart checkout per (shopper, Idempotency-Key): a retry finds the first order.
CREATE TABLE checkouts (
    user_id INTEGER NOT NULL,
    idempotency_key TEXT NOT NULL,
    order_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, idempotency_key)
);
