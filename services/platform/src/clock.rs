//! Wall-clock helpers. Timestamps are stored as Unix milliseconds (`BIGINT`) so the
//! same SQL runs unchanged on MySQL and SQLite.

use chrono::{DateTime, TimeZone, Utc};

pub fn now_millis() -> i64 {
    Utc::now().timestamp_millis()
}

pub fn to_datetime(millis: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(millis).single().unwrap_or_default()
}

/// When a UUIDv7 (an order id) was minted, in Unix milliseconds: its first 48 bits.
pub fn uuid_v7_millis(id: &str) -> Option<i64> {
    let (secs, nanos) = uuid::Uuid::parse_str(id).ok()?.get_timestamp()?.to_unix();
    Some(secs as i64 * 1000 + i64::from(nanos / 1_000_000))
}
