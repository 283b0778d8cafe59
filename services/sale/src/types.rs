//! What the engine's operations take and answer.

use goodsmall_platform::error::{ApiError, ErrorCode, Unreachable};
use serde::Serialize;

/// A sale's id. The engine's operations that take two ids take them typed, so a
/// sale and a shopper cannot be swapped; they are made where the id comes in (a
/// route's path, a session, a row).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SaleId(pub i64);

/// A shopper's id (the user service's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(pub i64);

impl std::fmt::Display for SaleId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::fmt::Display for UserId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Units asked for in one reservation: at least 1 (a route's own bound, e.g. a
/// purchase's 1 to 10, is checked where its input is parsed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Quantity(i64);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a quantity of {0} is below 1")]
pub struct QuantityBelowOne(pub i64);

impl Quantity {
    pub fn new(units: i64) -> Result<Self, QuantityBelowOne> {
        if units < 1 {
            return Err(QuantityBelowOne(units));
        }
        Ok(Self(units))
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

/// One purchase for the engine to decide ([`StockEngine::reserve`](crate::StockEngine::reserve)):
/// `user` asks for `quantity` units of `sale` under the Idempotency-Key `key`, to be held
/// for the new order `order`, at `at_ms` (Unix milliseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReservationRequest<'a> {
    pub sale: SaleId,
    pub user: UserId,
    pub key: &'a str,
    pub quantity: Quantity,
    pub order: &'a str,
    pub at_ms: i64,
    /// The end of the shopper's turn, from an admission the caller verified; `None`
    /// without one. A sale with a waiting room refuses a purchase without a turn that
    /// is on (after answering a retry of an earlier success).
    pub turn_ends_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaleDefinition {
    pub sale_id: i64,
    pub product_id: i64,
    pub stock: i64,
    pub price_cents: i64,
    pub opens_at_ms: i64,
    pub closes_at_ms: i64,
    pub per_user_limit: i64,
    /// The sale's waiting room, if it has one.
    pub queue: Option<crate::queue::QueueTerms>,
}

/// Declares the refusals, each once, with its API error code and what the shopper is
/// told; everything else derives from this list.
macro_rules! refusals {
    ($($(#[$doc:meta])* $variant:ident => ($code:ident, $detail:literal)),+ $(,)?) => {
        /// Why the engine refused a purchase. This is the one list of refusals: the API's
        /// error code and answer (`code`, `From<Refusal> for ApiError`), the
        /// `goodsmall_purchases_total{outcome}` labels (`ALL`), and docs/errors.md (a test
        /// checks each is documented) follow it; `scripts/reserve.lua` answers with the
        /// same codes (a test checks they agree).
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Refusal { $($(#[$doc])* $variant),+ }

        impl Refusal {
            pub const ALL: &'static [Refusal] = &[$(Refusal::$variant),+];

            /// The stable API error code (docs/errors.md); the scripts answer with its name.
            pub fn code(&self) -> ErrorCode {
                match self { $(Refusal::$variant => ErrorCode::$code),+ }
            }

            /// What the shopper is told.
            pub fn detail(&self) -> &'static str {
                match self { $(Refusal::$variant => $detail),+ }
            }
        }
    };
}

refusals! {
    UnknownSale => (SaleNotFound, "no such sale"),
    SaleNotOpen => (SaleNotOpen, "the sale has not opened yet"),
    SaleClosed => (SaleClosed, "the sale has closed"),
    SoldOut => (SoldOut, "every unit has been sold"),
    /// The merchant's emergency stop (a FlashSale's `goodsmall.io/halted`).
    Halted => (SaleHalted, "the merchant has halted this sale; try again later"),
    InsufficientStock => (InsufficientStock, "fewer units are left than you asked for"),
    PurchaseLimit => (PurchaseLimit, "you have reached this sale's per-shopper limit"),
    /// A sale with a waiting room, bought from without an admission.
    AdmissionRequired => (AdmissionRequired, "this sale admits shoppers through its waiting room: join it first"),
    /// The admission's turn is over.
    AdmissionExpired => (AdmissionExpired, "your turn to buy has expired"),
}

impl Refusal {
    /// The scripts answer with the codes' names.
    pub(crate) fn from_code(code: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|r| r.code().as_str() == code)
    }
}

/// Each refusal is answered with its own code and detail.
impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        ApiError::new(refusal.code(), refusal.detail())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reservation {
    /// `epoch`: the sale's generation in the engine when it decided (0 until the sale is
    /// first rebuilt, then the epoch the rebuild was given): the order service refuses to
    /// commit an order reserved in a generation that has since been lost.
    Reserved {
        order_id: String,
        quantity: i64,
        remaining: i64,
        repeated: bool,
        epoch: i64,
    },
    Refused(Refusal),
}

/// The epoch of a sale that has never been rebuilt (its hash has no `epoch` field).
pub const FIRST_EPOCH: i64 = 0;

/// What the engine holds for a (user, key): [`StockEngine::first_answer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRecord {
    First(FirstAnswer),
    /// The sale has no successful answer for the key.
    NoAnswer,
    /// The engine does not hold the sale (not loaded yet, removed, or lost with the store).
    NoSale,
}

/// The first successful answer a (user, key) was given, as [`StockEngine::first_answer`]
/// reads it (with the sale's epoch, read before it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirstAnswer {
    pub order_id: String,
    pub quantity: i64,
    pub epoch: i64,
}

/// A sale as the engine holds it: its terms, where its units are
/// (`initial = remaining + reserved + sold`) and its flags. The one counters type: the order service's API
/// and the operator's phase and status read this too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct SaleCounters {
    pub sale_id: i64,
    pub product_id: i64,
    pub initial: i64,
    pub remaining: i64,
    pub reserved: i64,
    pub sold: i64,
    pub price_cents: i64,
    pub opens_at_ms: i64,
    pub closes_at_ms: i64,
    pub per_user_limit: i64,
    pub closed: bool,
    /// Purchases are refused with `SaleHalted` (the merchant's emergency stop).
    pub halted: bool,
}

impl SaleCounters {
    /// The counters a rebuild from the durable records gives
    /// ([`StockEngine::restore_sale`](crate::StockEngine::restore_sale)): the terms of
    /// `def`, `remaining = stock - held`, each order's units where its state puts them,
    /// and no halt (a restore does not know of one).
    pub fn rebuilt(def: &SaleDefinition, closed: bool, orders: &[RecordedOrder]) -> Self {
        let mut c = Self {
            sale_id: def.sale_id,
            product_id: def.product_id,
            initial: def.stock,
            remaining: def.stock,
            reserved: 0,
            sold: 0,
            price_cents: def.price_cents,
            opens_at_ms: def.opens_at_ms,
            closes_at_ms: def.closes_at_ms,
            per_user_limit: def.per_user_limit,
            closed,
            halted: false,
        };
        for o in orders {
            c.remaining -= o.held();
            match o.units {
                Units::Reserved => c.reserved += o.quantity,
                Units::Sold => c.sold += o.quantity,
                Units::Released => {}
            }
        }
        c
    }
}

/// A reservation not yet confirmed or released.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenReservation {
    pub order_id: String,
    pub user_id: i64,
    pub quantity: i64,
}

/// An order of a sale from the durable records, as [`StockEngine::restore_sale`] rebuilds
/// it: its reservation (in its state), its buyer's units, and the first answer of its
/// Idempotency-Key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedOrder {
    pub order_id: String,
    pub user_id: i64,
    pub quantity: i64,
    pub units: Units,
    /// The purchase's Idempotency-Key (orders made otherwise have none).
    pub idempotency_key: Option<String>,
}

/// Where a recorded order's units are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Units {
    /// Held for the order until it is paid or released.
    Reserved,
    Sold,
    /// Back in stock (failed, expired, cancelled or refunded).
    Released,
}

impl RecordedOrder {
    /// Units the order holds (reserved or sold).
    pub fn held(&self) -> i64 {
        if self.units == Units::Released {
            0
        } else {
            self.quantity
        }
    }
}

/// What a `release` or `confirm` call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    /// This call put the units back into stock.
    Released,
    /// This call turned reserved units into sold ones.
    Confirmed,
    /// It had been settled before (or cannot move that way); nothing changed.
    AlreadySettled,
    /// No such reservation (or sale).
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadOutcome {
    Created,
    Updated,
    Unchanged,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("stock engine (Redis): {0}")]
    Redis(#[from] redis::RedisError),
    #[error("sale {sale_id}: a total stock of {stock} is below the {committed} units already reserved or sold")]
    StockBelowCommitted { sale_id: i64, stock: i64, committed: i64 },
    #[error("stock engine: unexpected script answer {0}")]
    Protocol(String),
    /// A stored number that does not parse: written by something else, or corrupt.
    #[error("stock engine: {key} field {field} holds {value:?}, not a whole number")]
    Corrupt {
        key: String,
        field: &'static str,
        value: String,
        #[source]
        source: std::num::ParseIntError,
    },
    /// A sale hash without a field every sale is made with: half-made, not a sale with 0 of it.
    #[error("stock engine: {key} has no field {field}")]
    MissingField { key: String, field: &'static str },
    /// A caller bug (quantity below 1, a malformed sale): refused before any state is read.
    #[error("stock engine: invalid input: {0}")]
    InvalidInput(&'static str),
}

/// Only an engine that does not answer is a 503 the client may retry.
impl Unreachable for EngineError {
    fn unreachable(&self) -> Option<&'static str> {
        match self {
            EngineError::Redis(redis) => goodsmall_platform::kv::redis_unavailable(redis).then_some("the stock store"),
            EngineError::StockBelowCommitted { .. }
            | EngineError::Protocol(_)
            | EngineError::Corrupt { .. }
            | EngineError::MissingField { .. }
            | EngineError::InvalidInput(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// The codes `scripts/reserve.lua` refuses with (`{'NO', 'CODE'}`).
    fn script_refusals() -> Vec<String> {
        let script = include_str!("scripts/reserve.lua");
        script
            .match_indices("'NO'")
            .map(|(at, _)| {
                let rest =
                    script[at + 4..].trim_start().strip_prefix(',').expect("'NO' is followed by its code").trim_start();
                let rest = rest.strip_prefix('\'').expect("the code is quoted");
                rest[..rest.find('\'').expect("closing quote")].to_owned()
            })
            .collect()
    }

    #[test]
    fn the_reserve_script_and_refusal_agree() {
        let answered = script_refusals();
        assert!(!answered.is_empty(), "the script refuses somewhere");
        for code in &answered {
            assert!(Refusal::from_code(code).is_some(), "reserve.lua answers {code}, which is no Refusal");
        }
        let answered: BTreeSet<&str> = answered.iter().map(String::as_str).collect();
        let listed: BTreeSet<&str> = Refusal::ALL.iter().map(|r| r.code().as_str()).collect();
        assert_eq!(answered, listed, "every refusal is one the script can answer, and no other");
    }

    #[test]
    fn refusals_are_listed_once_with_codes_of_their_own() {
        let codes: BTreeSet<&str> = Refusal::ALL.iter().map(|r| r.code().as_str()).collect();
        assert_eq!(codes.len(), Refusal::ALL.len());
        for refusal in Refusal::ALL {
            assert_eq!(Refusal::from_code(refusal.code().as_str()), Some(*refusal));
            let answer = ApiError::from(*refusal);
            assert_eq!((answer.code, answer.detail.as_str()), (refusal.code(), refusal.detail()));
            assert!(answer.status().is_client_error(), "{refusal:?}");
        }
    }

    #[test]
    fn every_refusal_is_documented_with_its_status() {
        let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/errors.md"))
            .expect("docs/errors.md exists");
        for refusal in Refusal::ALL {
            let row = format!("| `{}` | {} |", refusal.code(), refusal.code().status().as_u16());
            assert!(doc.contains(&row), "docs/errors.md has no row starting {row:?} for {refusal:?}");
        }
    }
}
