//! Wall-clock helpers. Timestamps are stored as Unix milliseconds (`BIGINT`) so the
//! same SQL runs unchanged on MySQL and SQLite.

use chrono::{DateTime, TimeZone, Utc};

pub fn now_millis() -> i64 {
    Utc::now().timestamp_millis()
}

/// Unix milliseconds no `DateTime<Utc>` can hold (beyond about ±262,000 years): a
/// corrupt stored timestamp, never to be read as some other time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the stored time {0} ms is out of range")]
pub struct TimeOutOfRange(pub i64);

/// A stored timestamp (Unix milliseconds) as a time.
pub fn to_datetime(millis: i64) -> Result<DateTime<Utc>, TimeOutOfRange> {
    Utc.timestamp_millis_opt(millis).single().ok_or(TimeOutOfRange(millis))
}

/// When a UUIDv7 (an order id) was minted, in Unix milliseconds: its first 48 bits.
pub fn uuid_v7_millis(id: &str) -> Option<i64> {
    let (secs, nanos) = uuid::Uuid::parse_str(id).ok()?.get_timestamp()?.to_unix();
    Some(secs as i64 * 1000 + i64::from(nanos / 1_000_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_out_of_range_time_is_an_error_not_1970() {
        assert_eq!(to_datetime(0).map(|t| t.timestamp_millis()), Ok(0));
        assert_eq!(to_datetime(1_700_000_000_123).map(|t| t.timestamp_millis()), Ok(1_700_000_000_123));
        assert_eq!(to_datetime(i64::MAX), Err(TimeOutOfRange(i64::MAX)));
        assert_eq!(to_datetime(i64::MIN), Err(TimeOutOfRange(i64::MIN)));
    }

    #[test]
    fn the_time_is_read_from_a_v7_id() {
        let before = now_millis();
        let id = uuid::Uuid::now_v7().to_string();
        let at = uuid_v7_millis(&id).expect("a v7 id has a time");
        assert!((before..=now_millis()).contains(&at), "{before} <= {at}");
        assert_eq!(uuid_v7_millis("not-a-uuid"), None);
        assert_eq!(uuid_v7_millis(&uuid::Uuid::new_v4().to_string()), None, "v4 ids carry no time");
    }
}
