-- sqlx's Any driver reads MySQL TEXT as bytes, so text columns are VARCHAR.
-- Personal fields are AES-256-GCM ciphertext (base64); email_hash is a keyed hash for lookup.
CREATE TABLE users (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    email_hash CHAR(64) NOT NULL,
    email_enc VARCHAR(1024) NOT NULL,
    name_enc VARCHAR(1024) NOT NULL,
    phone_enc VARCHAR(512) NOT NULL,
    address_enc VARCHAR(2048) NOT NULL,
    password_hash VARCHAR(255) NOT NULL,
    role VARCHAR(16) NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE KEY users_email_hash (email_hash)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- A session is a refresh-token family: rotation keeps the id, reuse revokes it.
CREATE TABLE sessions (
    id CHAR(32) NOT NULL PRIMARY KEY,
    user_id BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT NULL,
    KEY sessions_user (user_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE refresh_tokens (
    token_hash CHAR(64) NOT NULL PRIMARY KEY,
    session_id CHAR(32) NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT NULL,
    KEY refresh_tokens_session (session_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Mail waiting for the background sender; rows are deleted once delivered.
CREATE TABLE mail_outbox (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    recipient VARCHAR(320) NOT NULL,
    subject VARCHAR(500) NOT NULL,
    body VARCHAR(8000) NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_error VARCHAR(2000) NULL,
    created_at BIGINT NOT NULL,
    KEY mail_outbox_due (next_attempt_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
