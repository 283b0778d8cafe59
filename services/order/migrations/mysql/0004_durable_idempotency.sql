-- A purchase's Idempotency-Key is committed with its order, so its first answer outlives
-- the stock engine: a sale rebuilt from its orders gets the key's record back, and the
-- unique index refuses a second order for one (shopper, sale, key) whatever the engine
-- says. Orders made otherwise (cart checkouts, swept reservations) have none.
ALTER TABLE orders ADD COLUMN idempotency_key VARCHAR(100) NULL;
CREATE UNIQUE INDEX orders_idempotency ON orders (user_id, sale_id, idempotency_key);
-- A rebuild reads every order of its sale.
CREATE INDEX orders_sale ON orders (sale_id);
-- The sale's generation in the stock engine: each rebuild from the orders sets a new
-- one, and an order reserved in an older (lost) generation is not committed.
ALTER TABLE sales ADD COLUMN epoch BIGINT NOT NULL DEFAULT 0;
