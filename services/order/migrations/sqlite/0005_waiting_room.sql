-- A sale's waiting room (contracts::admission::Admission); all three NULL when the
-- sale is first come, first served. The queue itself lives in the stock engine.
ALTER TABLE sales ADD COLUMN queue_pre_queue_seconds BIGINT NULL;
ALTER TABLE sales ADD COLUMN queue_admit_per_second BIGINT NULL;
ALTER TABLE sales ADD COLUMN queue_turn_ttl_seconds BIGINT NULL;
-- The key that signs the sale's admissions (hex, 32 random bytes), made when first needed.
ALTER TABLE sales ADD COLUMN queue_secret VARCHAR(64) NULL;
