//! What the engine's operations take and answer.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaleDefinition {
    pub sale_id: i64,
    pub product_id: i64,
    pub stock: i64,
    pub price_cents: i64,
    pub opens_at_ms: i64,
    pub closes_at_ms: i64,
    pub per_user_limit: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    UnknownSale,
    SaleNotOpen,
    SaleClosed,
    SoldOut,
    /// The merchant's emergency stop (a FlashSale's `goodsmall.io/halted`).
    Halted,
    InsufficientStock,
    PurchaseLimit,
}

impl Refusal {
    /// The stable API error code (docs/errors.md).
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownSale => "SALE_NOT_FOUND",
            Self::SaleNotOpen => "SALE_NOT_OPEN",
            Self::SaleClosed => "SALE_CLOSED",
            Self::SoldOut => "SOLD_OUT",
            Self::Halted => "SALE_HALTED",
            Self::InsufficientStock => "INSUFFICIENT_STOCK",
            Self::PurchaseLimit => "PURCHASE_LIMIT",
        }
    }

    pub const ALL: [Refusal; 7] =
        [Self::UnknownSale, Self::SaleNotOpen, Self::SaleClosed, Self::SoldOut, Self::Halted, Self::InsufficientStock, Self::PurchaseLimit];

    /// The scripts answer with the same codes.
    pub(crate) fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.code() == code)
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
    Corrupt { key: String, field: &'static str, value: String, #[source] source: std::num::ParseIntError },
    /// A sale hash without a field every sale is made with: half-made, not a sale with 0 of it.
    #[error("stock engine: {key} has no field {field}")]
    MissingField { key: String, field: &'static str },
    /// A caller bug (quantity below 1, a malformed sale): refused before any state is read.
    #[error("stock engine: invalid input: {0}")]
    InvalidInput(&'static str),
}
