-- The durable record of each sale (Redis holds the live counters; these rows are
-- what they are rebuilt from).
CREATE TABLE sales (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    product_id BIGINT NOT NULL,
    merchant_id BIGINT NOT NULL,
    stock BIGINT NOT NULL,
    price_cents BIGINT NOT NULL,
    opens_at BIGINT NOT NULL,
    closes_at BIGINT NOT NULL,
    per_user_limit BIGINT NOT NULL,
    closed_at BIGINT NULL,
    created_at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Order ids are UUIDv7 strings: unguessable, and time-ordered for paging.
CREATE TABLE orders (
    id CHAR(36) NOT NULL PRIMARY KEY,
    user_id BIGINT NOT NULL,
    sale_id BIGINT NULL,
    status VARCHAR(24) NOT NULL,
    total_cents BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    status_changed_at BIGINT NOT NULL,
    KEY orders_user (user_id, id),
    KEY orders_status (status, status_changed_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE order_lines (
    order_id CHAR(36) NOT NULL,
    product_id BIGINT NOT NULL,
    quantity BIGINT NOT NULL,
    unit_price_cents BIGINT NOT NULL,
    PRIMARY KEY (order_id, product_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
