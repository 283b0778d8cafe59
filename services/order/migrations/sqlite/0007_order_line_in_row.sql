-- A sale's order has one line. A release after this one keeps that line in the order's
-- row (no order_lines row: one row and one index entry fewer per purchase, one query
-- fewer per order read). This release adds the columns and reads either shape, but
-- still writes order_lines, so that the release before it (which reads only
-- order_lines) can run beside it during a rolling upgrade. The columns are NULL for an
-- order whose lines are in order_lines.
ALTER TABLE orders ADD COLUMN line_product_id INTEGER NULL;
ALTER TABLE orders ADD COLUMN line_quantity INTEGER NULL;
ALTER TABLE orders ADD COLUMN line_unit_price_cents INTEGER NULL;
