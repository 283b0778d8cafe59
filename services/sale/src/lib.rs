//! The stock engine: where purchases are decided. Flash-sale stock and regular product
//! stock, in Redis (each decision one Lua script, run with EVALSHA) or in-process for
//! the one-process default, with the same semantics (the contract tests run both).
//! The services and the FlashSale operator share this crate and its key layout.

pub mod keys;
mod memory;
mod redis_engine;
mod sold_out;

pub use sold_out::SoldOutFlags;

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
    InsufficientStock,
    PurchaseLimit,
}

impl Refusal {
    pub fn code(self) -> &'static str {
        match self {
            Self::UnknownSale => "SALE_NOT_FOUND",
            Self::SaleNotOpen => "SALE_NOT_OPEN",
            Self::SaleClosed => "SALE_CLOSED",
            Self::SoldOut => "SOLD_OUT",
            Self::InsufficientStock => "INSUFFICIENT_STOCK",
            Self::PurchaseLimit => "PURCHASE_LIMIT",
        }
    }

    fn from_script(code: &str) -> Self {
        match code {
            "SALE_NOT_OPEN" => Self::SaleNotOpen,
            "SALE_CLOSED" => Self::SaleClosed,
            "SOLD_OUT" => Self::SoldOut,
            "INSUFFICIENT_STOCK" => Self::InsufficientStock,
            "PURCHASE_LIMIT" => Self::PurchaseLimit,
            _ => Self::UnknownSale,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reservation {
    Reserved { order_id: String, quantity: i64, remaining: i64, repeated: bool },
    Refused(Refusal),
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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    /// This call settled it.
    Done,
    /// It had been settled before; nothing changed.
    AlreadySettled,
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
}

#[derive(Clone)]
pub struct StockEngine(Backend);

#[derive(Clone)]
enum Backend {
    Redis(redis_engine::RedisEngine),
    Memory(memory::MemoryEngine),
}

macro_rules! dispatch {
    ($self:ident, $engine:ident => $call:expr) => {
        match &$self.0 {
            Backend::Redis($engine) => $call,
            Backend::Memory($engine) => $call,
        }
    };
}

impl StockEngine {
    pub fn redis(conn: redis::aio::ConnectionManager) -> Self {
        Self(Backend::Redis(redis_engine::RedisEngine::new(conn)))
    }

    pub fn memory() -> Self {
        Self(Backend::Memory(memory::MemoryEngine::default()))
    }

    pub fn backend_name(&self) -> &'static str {
        match self.0 {
            Backend::Redis(_) => "redis",
            Backend::Memory(_) => "memory",
        }
    }

    /// Idempotent pre-load or update of a sale; never resets buyers or reservations.
    pub async fn load_sale(&self, def: &SaleDefinition) -> Result<LoadOutcome, EngineError> {
        dispatch!(self, e => e.load_sale(def).await)
    }

    /// Ends the sale now: further purchases are refused with `SaleClosed`.
    pub async fn close_sale(&self, sale_id: i64) -> Result<bool, EngineError> {
        dispatch!(self, e => e.close_sale(sale_id).await)
    }

    pub async fn counters(&self, sale_id: i64) -> Result<Option<SaleCounters>, EngineError> {
        dispatch!(self, e => e.counters(sale_id).await)
    }

    /// The purchase decision (see `scripts/reserve.lua` for the order of the checks).
    /// A repeated (user, key) returns the first successful answer and changes nothing;
    /// refusals are not remembered, since they change nothing either.
    pub async fn reserve(&self, sale_id: i64, user_id: i64, idempotency_key: &str, quantity: i64, order_id: &str, now_ms: i64) -> Result<Reservation, EngineError> {
        dispatch!(self, e => e.reserve(sale_id, user_id, idempotency_key, quantity, order_id, now_ms).await)
    }

    /// Reserved or sold units go back to stock exactly once.
    pub async fn release(&self, sale_id: i64, order_id: &str) -> Result<Settle, EngineError> {
        dispatch!(self, e => e.settle(sale_id, order_id, false).await)
    }

    /// Reserved units become sold exactly once.
    pub async fn confirm(&self, sale_id: i64, order_id: &str) -> Result<Settle, EngineError> {
        dispatch!(self, e => e.settle(sale_id, order_id, true).await)
    }

    pub async fn set_product_stock(&self, product_id: i64, available: i64) -> Result<(), EngineError> {
        dispatch!(self, e => e.set_product_stock(product_id, available).await)
    }

    pub async fn product_stock(&self, product_id: i64) -> Result<Option<i64>, EngineError> {
        dispatch!(self, e => e.product_stock(product_id).await)
    }

    /// Cart checkout: every line or none; `Err(product_id)` names the first short one.
    /// Idempotent per order id.
    pub async fn reserve_products(&self, order_id: &str, lines: &[(i64, i64)]) -> Result<Result<(), i64>, EngineError> {
        dispatch!(self, e => e.reserve_products(order_id, lines).await)
    }

    /// Puts a checkout order's units back exactly once; `true` when this call did.
    pub async fn release_products(&self, order_id: &str) -> Result<bool, EngineError> {
        dispatch!(self, e => e.release_products(order_id).await)
    }
}
