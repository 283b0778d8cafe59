-- The revocations still in force (revoked within an access token's lifetime) are read
-- back into the key-value store when it has lost them (src/revocations.rs).
CREATE INDEX sessions_revoked ON sessions (revoked_at);
