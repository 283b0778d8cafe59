//! The two tables every event-using service has in its own database. Created with
//! `IF NOT EXISTS` at start, beside the service's own migrations, so the SQL lives
//! once, here.

use crate::db::{Database, Dialect};

const MYSQL: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS outbox_events (
        seq BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
        event_id VARCHAR(64) NOT NULL UNIQUE,
        topic VARCHAR(200) NOT NULL,
        event_key VARCHAR(200) NOT NULL,
        body VARCHAR(12000) NOT NULL, -- utf8mb4: the row must stay under 64 KiB
        created_at BIGINT NOT NULL,
        published_at BIGINT NULL,
        KEY outbox_unpublished (published_at, seq)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
    "CREATE TABLE IF NOT EXISTS processed_events (
        consumer VARCHAR(100) NOT NULL,
        event_id VARCHAR(64) NOT NULL,
        processed_at BIGINT NOT NULL,
        PRIMARY KEY (consumer, event_id)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
];

const SQLITE: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS outbox_events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        event_id TEXT NOT NULL UNIQUE,
        topic TEXT NOT NULL,
        event_key TEXT NOT NULL,
        body TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        published_at INTEGER NULL
    )",
    "CREATE INDEX IF NOT EXISTS outbox_unpublished ON outbox_events (published_at, seq)",
    "CREATE TABLE IF NOT EXISTS processed_events (
        consumer TEXT NOT NULL,
        event_id TEXT NOT NULL,
        processed_at INTEGER NOT NULL,
        PRIMARY KEY (consumer, event_id)
    )",
];

pub async fn install(db: &Database) -> Result<(), sqlx::Error> {
    let statements = match db.dialect() {
        Dialect::MySql => MYSQL,
        Dialect::Sqlite => SQLITE,
    };
    for statement in statements {
        sqlx::query(statement).execute(db.pool()).await?;
    }
    Ok(())
}
