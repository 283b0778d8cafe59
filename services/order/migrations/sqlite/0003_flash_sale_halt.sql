-- The one-process shop's stand-in for a FlashSale's `goodsmall.io/halted` annotation:
-- its value as last set (`goodsmall flashsale annotate`), NULL when not set.
ALTER TABLE flash_sale_manifests ADD COLUMN halted VARCHAR(63) NULL;
