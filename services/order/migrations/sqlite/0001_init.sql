-- The durable record of each sale (Redis holds the live counters; these rows are
-- what they are rebuilt from).
CREATE TABLE sales (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    product_id INTEGER NOT NULL,
    merchant_id INTEGER NOT NULL,
    stock INTEGER NOT NULL,
    price_cents INTEGER NOT NULL,
    opens_at INTEGER NOT NULL,
    closes_at INTEGER NOT NULL,
    per_user_limit INTEGER NOT NULL,
    closed_at INTEGER NULL,
    created_at INTEGER NOT NULL
);

-- Order ids are UUIDv7 strings: unguessable, and time-ordered for paging.
CREATE TABLE orders (
    id TEXT NOT NULL PRIMARY KEY,
    user_id INTEGER NOT NULL,
    sale_id INTEGER NULL,
    status TEXT NOT NULL,
    total_cents INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    status_changed_at INTEGER NOT NULL
);
CREATE INDEX orders_user ON orders (user_id, id);
CREATE INDEX orders_status ON orders (status, status_changed_at);

CREATE TABLE order_lines (
    order_id TEXT NOT NULL,
    product_id INTEGER NOT NULL,
    quantity INTEGER NOT NULL,
    unit_price_cents INTEGER NOT NULL,
    PRIMARY KEY (order_id, product_id)
);
