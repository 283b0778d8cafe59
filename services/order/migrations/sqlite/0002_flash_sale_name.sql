-- The FlashSale manifest (`namespace/name`) that drives a sale, if any. Cleared when the
-- manifest is deleted, so a new manifest of the same name starts a new sale.
ALTER TABLE sales ADD COLUMN flash_sale VARCHAR(320) NULL;
CREATE UNIQUE INDEX sales_flash_sale ON sales (flash_sale);
