-- FlashSale manifests applied to the one-process shop (in a cluster they live in the
-- Kubernetes API instead): the spec as applied, the status and recent Events as the
-- operator's reconcile left them, a pending deletion, and the stand-in for the
-- `goodsmall.io/halted` annotation (its value as last set, NULL when not set).
-- Until 2026-12 this table lived in the order database; `ManifestStore::carry_over`
-- moves its rows here once.
CREATE TABLE flash_sale_manifests (
    name VARCHAR(253) NOT NULL PRIMARY KEY,
    merchant_id BIGINT NOT NULL,
    spec TEXT NOT NULL,
    generation BIGINT NOT NULL,
    status TEXT NOT NULL,
    events TEXT NOT NULL,
    deleting INTEGER NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    halted VARCHAR(63) NULL
);
