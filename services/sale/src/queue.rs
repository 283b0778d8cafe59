//! A sale's waiting room, in the stock engine so that every order replica admits from
//! the same queue and a replica's restart loses no place.
//!
//! - Joining before the opening (within the pre-queue) draws a uniformly random place
//!   key, so the pre-queue is in a random order at the opening, and nobody is told a
//!   position before it: the shuffle happens, in effect, at the opening. Joining after
//!   the opening takes the next place behind everyone.
//! - From the opening, `admit_per_second` shoppers a second are admitted in place order,
//!   but never more unbought turns than units left: a turn ends when its shopper buys
//!   (their purchases within it still go through) or when `turn_ttl` runs out unused,
//!   which frees its room. Units released by declined or unpaid orders make room again.
//! - Nothing is admitted while the sale is halted or closed; once no unit is left and
//!   none is held by an unpaid order, every waiting shopper is told `SoldOut`.
//!
//! Admission is computed lazily by whichever call comes next (join, place, count), as
//! if it had run continuously; the earned admissions are not banked while there is no
//! room or nobody waiting, so a released unit lets one shopper in, not a burst.

use goodsmall_platform::error::ErrorCode;

/// A waiting room's terms, as the engine holds them with the sale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueTerms {
    /// How long before the opening shoppers may join.
    pub pre_queue_ms: i64,
    pub admit_per_second: i64,
    /// How long an admitted shopper's turn lasts.
    pub turn_ttl_ms: i64,
}

/// A shopper's place in a sale's waiting room, as it stands at the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueuePlace {
    /// Joined before the opening (at `opens_at_ms`): the place is drawn then. `joined`:
    /// how many have joined so far.
    PreQueue { joined: u64, opens_at_ms: i64 },
    /// `position` 1 is next; `units_left` is what the sale has now; shoppers are let in
    /// at `admit_per_second` while there are units. `number`: the shopper's place in the
    /// whole queue (1 is the first ever admitted), which never changes after the opening.
    Waiting { position: u64, units_left: i64, admit_per_second: i64, number: u64 },
    /// The shopper's turn, until `turn_ends_ms` (Unix milliseconds).
    Admitted { turn_ends_ms: i64, number: u64 },
    /// The shopper was admitted and the turn ended.
    Expired { number: u64 },
    /// Nothing left, and nothing held that could come back.
    SoldOut,
    /// The sale has ended.
    Closed,
}

/// Why a shopper cannot join or has no place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueRefusal {
    UnknownSale,
    /// The sale is first come, first served.
    NoWaitingRoom,
    /// Earlier than the pre-queue.
    NotOpen,
    Closed,
    SoldOut,
    /// Asked for a place without having joined.
    NotJoined,
}

impl QueueRefusal {
    pub const ALL: &'static [QueueRefusal] = &[
        QueueRefusal::UnknownSale,
        QueueRefusal::NoWaitingRoom,
        QueueRefusal::NotOpen,
        QueueRefusal::Closed,
        QueueRefusal::SoldOut,
        QueueRefusal::NotJoined,
    ];

    /// The API's error code; the scripts answer with its name.
    pub fn code(self) -> ErrorCode {
        match self {
            QueueRefusal::UnknownSale => ErrorCode::SaleNotFound,
            QueueRefusal::NoWaitingRoom => ErrorCode::NoWaitingRoom,
            QueueRefusal::NotOpen => ErrorCode::QueueNotOpen,
            QueueRefusal::Closed => ErrorCode::SaleClosed,
            QueueRefusal::SoldOut => ErrorCode::SoldOut,
            QueueRefusal::NotJoined => ErrorCode::NotInQueue,
        }
    }

    pub fn detail(self) -> &'static str {
        match self {
            QueueRefusal::UnknownSale => "no such sale",
            QueueRefusal::NoWaitingRoom => "this sale has no waiting room; buy directly",
            QueueRefusal::NotOpen => "the waiting room opens before the sale; try again later",
            QueueRefusal::Closed => "the sale has closed",
            QueueRefusal::SoldOut => "every unit has been sold",
            QueueRefusal::NotJoined => "you have not joined this sale's waiting room",
        }
    }

    pub(crate) fn from_code(code: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|r| r.code().as_str() == code)
    }
}

impl From<QueueRefusal> for goodsmall_platform::error::ApiError {
    fn from(refusal: QueueRefusal) -> Self {
        Self::new(refusal.code(), refusal.detail())
    }
}

/// A sale's waiting room in numbers (`status.queue`, the per-sale metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct QueueCounts {
    /// Everyone who has joined.
    pub joined: u64,
    /// Admitted so far (the first `admitted` places).
    pub admitted: u64,
    /// Turns that ended unused.
    pub expired: u64,
    /// Admitted shoppers whose turn is on and who have not bought yet.
    pub in_turn: u64,
}

impl QueueCounts {
    /// Shoppers still waiting for their turn.
    pub fn waiting(&self) -> u64 {
        self.joined.saturating_sub(self.admitted)
    }
}

/// Place keys of the pre-queue are drawn from `[0, PRE_QUEUE_KEYS)`; places after the
/// opening start at `PRE_QUEUE_KEYS` (`queue.lua`'s `LATE`): every one of them is a whole
/// number a double holds exactly.
pub const PRE_QUEUE_KEYS: u64 = 1 << 50;

/// A uniformly random pre-queue place key.
pub fn draw_place_key() -> u64 {
    rand::random::<u64>() % PRE_QUEUE_KEYS
}
