//! A sale's waiting room, as a merchant declares it (`admission` in `POST /api/sales`,
//! `spec.admission` in a FlashSale) and the order service records it. Absent: the sale
//! is first come, first served. The queue itself lives in the stock engine
//! (`goodsmall_sale::queue`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The longest pre-queue: shoppers may join at most a day before the opening.
pub const MAX_PRE_QUEUE_SECONDS: i64 = 86_400;
/// The fastest admission one sale may ask for.
pub const MAX_ADMIT_PER_SECOND: i64 = 10_000;
/// An admitted shopper's turn: long enough to decide, short enough that a turn nobody
/// uses goes back to the queue soon.
pub const MIN_TURN_TTL_SECONDS: i64 = 10;
pub const MAX_TURN_TTL_SECONDS: i64 = 3_600;
/// Without `admit_per_second`, the queue offers the whole stock in this long
/// ([`default_admit_per_second`]).
pub const DEFAULT_STOCK_OFFERED_WITHIN_SECONDS: i64 = 30;

/// How shoppers are let in. One mode today; the field leaves room for others (a lottery).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum AdmissionMode {
    /// A waiting room: the pre-queue shuffled at the opening, then arrival order.
    #[serde(rename = "QUEUE", alias = "Queue")]
    Queue,
}

/// The waiting room's terms as they come in (the JSON APIs' shape), unchecked.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdmissionInput {
    pub mode: AdmissionMode,
    /// How long before `opens_at` shoppers may join, 0 to 86,400 s. Everyone who joins
    /// before the opening gets a uniformly random place at the opening.
    #[schema(minimum = 0, maximum = 86_400)]
    pub pre_queue_seconds: i64,
    /// Shoppers admitted per second, 1 to 10,000; by default the stock divided by 30
    /// (the whole stock offered within 30 s), at least 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 10_000)]
    pub admit_per_second: Option<i64>,
    /// How long an admitted shopper keeps the right to buy, 10 to 3,600 s.
    #[schema(minimum = 10, maximum = 3_600)]
    pub turn_ttl_seconds: i64,
}

/// A waiting room's terms that met every rule ([`Admission::parse`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Admission {
    pub mode: AdmissionMode,
    pub pre_queue_seconds: i64,
    pub admit_per_second: i64,
    pub turn_ttl_seconds: i64,
}

/// One broken rule of the waiting room: the field (below `admission`) and the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdmissionError {
    pub field: AdmissionField,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdmissionField {
    PreQueue,
    AdmitPerSecond,
    TurnTtl,
}

impl AdmissionField {
    /// The field as the JSON APIs name it, and as a FlashSale's spec does.
    pub fn names(self) -> (&'static str, &'static str) {
        match self {
            AdmissionField::PreQueue => ("admission.pre_queue_seconds", "spec.admission.preQueue"),
            AdmissionField::AdmitPerSecond => ("admission.admit_per_second", "spec.admission.admitPerSecond"),
            AdmissionField::TurnTtl => ("admission.turn_ttl_seconds", "spec.admission.turnTTL"),
        }
    }
}

/// The admission rate when the merchant names none: the whole stock offered within
/// [`DEFAULT_STOCK_OFFERED_WITHIN_SECONDS`], between 1 and [`MAX_ADMIT_PER_SECOND`].
/// Admitting faster than the stock can be bought only moves the crowd from the queue to
/// the purchase path, and the queue also never keeps more unused turns than units left.
pub fn default_admit_per_second(stock: i64) -> i64 {
    let per_second = (stock.max(0) + DEFAULT_STOCK_OFFERED_WITHIN_SECONDS - 1) / DEFAULT_STOCK_OFFERED_WITHIN_SECONDS;
    per_second.clamp(1, MAX_ADMIT_PER_SECOND)
}

impl Admission {
    /// Every broken rule, in the order pre-queue, rate, turn.
    pub fn parse(input: &AdmissionInput, stock: i64) -> Result<Self, Vec<AdmissionError>> {
        let mut errors = Vec::new();
        let mut check = |field, value: i64, min: i64, max: i64| {
            if !(min..=max).contains(&value) {
                errors.push(AdmissionError { field, message: format!("must be between {min} and {max}, got {value}") });
            }
        };
        check(AdmissionField::PreQueue, input.pre_queue_seconds, 0, MAX_PRE_QUEUE_SECONDS);
        let admit_per_second = input.admit_per_second.unwrap_or_else(|| default_admit_per_second(stock));
        check(AdmissionField::AdmitPerSecond, admit_per_second, 1, MAX_ADMIT_PER_SECOND);
        check(AdmissionField::TurnTtl, input.turn_ttl_seconds, MIN_TURN_TTL_SECONDS, MAX_TURN_TTL_SECONDS);
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Self {
            mode: input.mode,
            pre_queue_seconds: input.pre_queue_seconds,
            admit_per_second,
            turn_ttl_seconds: input.turn_ttl_seconds,
        })
    }

    /// The terms as an input again (what the operator sends on the internal API).
    pub fn input(&self) -> AdmissionInput {
        AdmissionInput {
            mode: self.mode,
            pre_queue_seconds: self.pre_queue_seconds,
            admit_per_second: Some(self.admit_per_second),
            turn_ttl_seconds: self.turn_ttl_seconds,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(pre_queue: i64, rate: Option<i64>, ttl: i64) -> AdmissionInput {
        AdmissionInput {
            mode: AdmissionMode::Queue,
            pre_queue_seconds: pre_queue,
            admit_per_second: rate,
            turn_ttl_seconds: ttl,
        }
    }

    #[test]
    fn good_terms_parse_and_the_rate_defaults_to_the_stock_over_30_seconds() {
        let parsed = Admission::parse(&input(900, None, 120), 1_000).unwrap();
        assert_eq!((parsed.pre_queue_seconds, parsed.admit_per_second, parsed.turn_ttl_seconds), (900, 34, 120));
        assert_eq!(default_admit_per_second(1), 1);
        assert_eq!(default_admit_per_second(100_000_000), MAX_ADMIT_PER_SECOND);
        let named = Admission::parse(&input(0, Some(5), 10), 1_000).unwrap();
        assert_eq!(named.admit_per_second, 5);
        assert_eq!(Admission::parse(&named.input(), 1).unwrap(), named, "the input round-trips");
    }

    #[test]
    fn every_broken_rule_is_named() {
        let errors = Admission::parse(&input(-1, Some(0), 9), 10).unwrap_err();
        let named: Vec<_> = errors.iter().map(|e| format!("{}: {}", e.field.names().0, e.message)).collect();
        assert_eq!(
            named,
            [
                "admission.pre_queue_seconds: must be between 0 and 86400, got -1",
                "admission.admit_per_second: must be between 1 and 10000, got 0",
                "admission.turn_ttl_seconds: must be between 10 and 3600, got 9",
            ]
        );
    }

    #[test]
    fn the_mode_reads_in_either_spelling() {
        let api: AdmissionMode = serde_json::from_str("\"QUEUE\"").unwrap();
        let manifest: AdmissionMode = serde_json::from_str("\"Queue\"").unwrap();
        assert_eq!((api, manifest), (AdmissionMode::Queue, AdmissionMode::Queue));
        assert!(serde_json::from_str::<AdmissionMode>("\"Lottery\"").is_err());
    }
}
