-- The FlashSale manifest (`namespace/name`) that drives a sale, if any. Cleared when the
-- manifest is deleted, so a new manifest of the same name starts a new sale.
ALTER TABLE sales ADD COLUMN flash_sale VARCHAR(320) NULL;
CREATE UNIQUE INDEX sales_flash_sale ON sales (flash_sale);

-- FlashSale manifests applied to the one-process shop (in a cluster they live in the
-- Kubernetes API instead): the spec as applied, the status and recent Events as the
-- operator's reconcile left them.
CREATE TABLE flash_sale_manifests (
    name VARCHAR(253) NOT NULL PRIMARY KEY,
    merchant_id BIGINT NOT NULL,
    spec TEXT NOT NULL,
    generation BIGINT NOT NULL,
    status TEXT NOT NULL,
    events TEXT NOT NULL,
    deleting INTEGER NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);
