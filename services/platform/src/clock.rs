//! Wall-clock helpers. Timestamps are stored as Unix milliseconds (`BIGINT`) so the
//! same SQL runs unchanged on MySQL and SQLite.

use chrono::{DateTime, TimeZone, Utc};

pub fn now_millis() -> i64 {
    Utc::now().timestamp_millis()
}

pub fn to_datetime(millis: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(millis).single().unwrap_or_default()
}
