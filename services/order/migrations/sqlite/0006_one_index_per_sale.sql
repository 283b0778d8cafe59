-- One unique index, led by the sale, serves both what orders_idempotency and orders_sale
-- did: a rebuild reads a sale's orders by its first column, and it still refuses a
-- second order for one (shopper, sale, key). Every order written pays one secondary
-- index fewer on the purchase path.
CREATE UNIQUE INDEX orders_sale_key ON orders (sale_id, user_id, idempotency_key);
DROP INDEX orders_idempotency;
DROP INDEX orders_sale;
