//! The waiting room's decisions, pure functions of the sale's window, what the stock
//! engine counts and the time (as [`crate::phase`] is for the phase): the state
//! `status.queue` shows, the Events of its transitions (it opens, its pre-queue is
//! shuffled, it drains) and when to look again. The reconciler reads the counts and
//! acts; tests drive these with a fixed clock.

use std::time::Duration;

use chrono::{DateTime, Utc};
use goodsmall_contracts::admission::Admission;
use goodsmall_sale::{queue::QueueCounts, SaleCounters};

use crate::crd::{QueueState, QueueStatus};

pub const OPENED: &str = "QueueOpened";
pub const SHUFFLED: &str = "QueueShuffled";
pub const DRAINED: &str = "QueueDrained";

/// A sale's waiting room: its terms and the opening they count from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Room {
    pub opens_at: DateTime<Utc>,
    pub admission: Admission,
}

impl Room {
    /// When shoppers may start joining: `opensAt - preQueue`.
    pub fn joins_from(&self) -> DateTime<Utc> {
        self.opens_at - chrono::Duration::seconds(self.admission.pre_queue_seconds)
    }
}

/// Nothing left and nothing held that could come back: every waiting shopper is told
/// SOLD_OUT (the engine's own test).
fn sold_out(stock: &SaleCounters) -> bool {
    stock.remaining == 0 && stock.reserved == 0
}

/// Where the room is. `closed`: the sale has ended (the phase plan's close); `stock`: the
/// sale's counters in the engine (`None`: not loaded); `counts`: the room's.
pub fn state(
    room: &Room,
    closed: bool,
    stock: Option<&SaleCounters>,
    counts: &QueueCounts,
    now: DateTime<Utc>,
) -> QueueState {
    if closed || stock.is_some_and(|s| s.closed) {
        QueueState::Closed
    } else if now < room.joins_from() || stock.is_none() {
        // Nobody can join a sale the engine does not hold (it is loaded at the warm-up,
        // which the CRD's rule keeps at or before the pre-queue).
        QueueState::NotOpen
    } else if now < room.opens_at {
        QueueState::PreQueue
    } else if counts.waiting() == 0 || stock.is_some_and(sold_out) {
        QueueState::Drained
    } else {
        QueueState::Admitting
    }
}

/// The status from the state and the counts.
pub fn status(state: QueueState, counts: &QueueCounts) -> QueueStatus {
    let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    QueueStatus {
        state,
        waiting: n(counts.waiting()),
        admitted: n(counts.admitted),
        expired: n(counts.expired),
        in_turn: n(counts.in_turn),
    }
}

/// An Event: (reason, message).
pub type Announcement = (&'static str, String);

/// The Events of a move from `old` (the last status; `None`: never seen) to `new`:
/// - it opens (shoppers may join), once;
/// - its pre-queue is shuffled: at the first look after the opening, how many places
///   were drawn (the shoppers who had joined by then);
/// - it drains: after the opening, nobody is left waiting, or nothing is left to sell.
pub fn announcements(
    room: &Room,
    old: Option<&QueueStatus>,
    new: &QueueStatus,
    counts: &QueueCounts,
    stock: Option<&SaleCounters>,
) -> Vec<Announcement> {
    use QueueState::*;
    let before = old.map(|o| o.state);
    let a = &room.admission;
    let mut out = Vec::new();
    let opened_now = matches!(before, None | Some(NotOpen)) && matches!(new.state, PreQueue | Admitting | Drained);
    if opened_now {
        let message = if a.pre_queue_seconds > 0 && new.state == PreQueue {
            format!(
                "the waiting room is open: shoppers who join before {} get a random place at the opening",
                room.opens_at.to_rfc3339()
            )
        } else {
            format!(
                "the waiting room is open: shoppers join in arrival order, {} admitted a second",
                a.admit_per_second
            )
        };
        out.push((OPENED, message));
    }
    let shuffled_now = a.pre_queue_seconds > 0
        && matches!(before, None | Some(NotOpen | PreQueue))
        && matches!(new.state, Admitting | Drained);
    if shuffled_now {
        out.push((
            SHUFFLED,
            format!(
                "{} shoppers' places drawn; admitting {} a second, each with a turn of {}s to buy",
                counts.joined, a.admit_per_second, a.turn_ttl_seconds
            ),
        ));
    }
    if new.state == Drained && before != Some(Drained) && counts.joined > 0 {
        let message = if stock.is_some_and(sold_out) {
            format!("sold out: the {} shoppers still waiting are told SOLD_OUT", new.waiting)
        } else {
            format!("nobody is waiting: all {} shoppers who joined were admitted", new.admitted)
        };
        out.push((DRAINED, message));
    }
    out
}

/// When to look again for the room's sake: at `opensAt - preQueue` (the room opens,
/// which the phase plan does not wake for), and every `refresh` while shoppers join or
/// wait, so that `status.queue` stays live; `None`: the phase plan's wake-ups suffice.
pub fn wake(room: &Room, state: QueueState, now: DateTime<Utc>, refresh: Duration) -> Option<Duration> {
    match state {
        QueueState::NotOpen if now < room.joins_from() => (room.joins_from() - now).to_std().ok(),
        QueueState::PreQueue | QueueState::Admitting => Some(refresh),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use goodsmall_contracts::admission::AdmissionMode;

    const REFRESH: Duration = Duration::from_secs(10);

    fn at(hh_mm_ss: &str) -> DateTime<Utc> {
        format!("2026-12-01T{hh_mm_ss}Z").parse().unwrap()
    }

    fn room(pre_queue_seconds: i64) -> Room {
        Room {
            opens_at: at("10:00:00"),
            admission: Admission {
                mode: AdmissionMode::Queue,
                pre_queue_seconds,
                admit_per_second: 5,
                turn_ttl_seconds: 120,
            },
        }
    }

    fn stock(remaining: i64, reserved: i64) -> SaleCounters {
        SaleCounters { remaining, reserved, initial: 10, ..SaleCounters::default() }
    }

    fn counts(joined: u64, admitted: u64) -> QueueCounts {
        QueueCounts { joined, admitted, expired: 0, in_turn: 0 }
    }

    #[test]
    fn the_state_follows_the_clock_and_the_counts() {
        let r = room(900);
        let loaded = stock(10, 0);
        let s = |now: &str, stock: Option<&SaleCounters>, c: QueueCounts| state(&r, false, stock, &c, at(now));
        assert_eq!(s("09:44:59", Some(&loaded), counts(0, 0)), QueueState::NotOpen, "before opensAt - preQueue");
        assert_eq!(s("09:45:00", None, counts(0, 0)), QueueState::NotOpen, "not loaded: nobody can join");
        assert_eq!(s("09:45:00", Some(&loaded), counts(0, 0)), QueueState::PreQueue);
        assert_eq!(s("09:59:59", Some(&loaded), counts(40, 0)), QueueState::PreQueue);
        assert_eq!(s("10:00:00", Some(&loaded), counts(40, 0)), QueueState::Admitting);
        assert_eq!(s("10:00:08", Some(&loaded), counts(40, 40)), QueueState::Drained, "everyone admitted");
        assert_eq!(s("10:00:08", Some(&stock(0, 2)), counts(40, 10)), QueueState::Admitting, "units may come back");
        assert_eq!(s("10:00:09", Some(&stock(0, 0)), counts(40, 10)), QueueState::Drained, "sold out");
        assert_eq!(state(&r, true, Some(&loaded), &counts(40, 10), at("10:30:00")), QueueState::Closed);
        let closed_early = SaleCounters { closed: true, ..loaded };
        assert_eq!(s("10:30:00", Some(&closed_early), counts(40, 10)), QueueState::Closed);
    }

    /// The reasons of the Events along a run of states.
    fn run(r: &Room, steps: &[(QueueState, QueueCounts, SaleCounters)]) -> Vec<Vec<&'static str>> {
        let mut old: Option<QueueStatus> = None;
        steps
            .iter()
            .map(|(st, c, s)| {
                let new = status(*st, c);
                let reasons = announcements(r, old.as_ref(), &new, c, Some(s)).into_iter().map(|(r, _)| r).collect();
                old = Some(new);
                reasons
            })
            .collect()
    }

    #[test]
    fn a_pre_queue_opens_is_shuffled_at_the_opening_and_drains_once() {
        use QueueState::*;
        let full = stock(10, 0);
        let reasons = run(
            &room(900),
            &[
                (NotOpen, counts(0, 0), full),
                (PreQueue, counts(0, 0), full),
                (PreQueue, counts(30, 0), full),
                (Admitting, counts(31, 0), full),
                (Admitting, counts(31, 5), full),
                (Drained, counts(31, 31), full),
                (Drained, counts(31, 31), full),
                (Admitting, counts(32, 31), full),
                (Drained, counts(32, 32), full),
                (Closed, counts(32, 32), full),
            ],
        );
        assert_eq!(
            reasons,
            [
                vec![],
                vec![OPENED],
                vec![],
                vec![SHUFFLED],
                vec![],
                vec![DRAINED],
                vec![],
                vec![],
                vec![DRAINED],
                vec![]
            ]
        );
        let new = status(Admitting, &counts(31, 0));
        let old = status(PreQueue, &counts(30, 0));
        let said = announcements(&room(900), Some(&old), &new, &counts(31, 0), Some(&full));
        assert_eq!(said[0].1, "31 shoppers' places drawn; admitting 5 a second, each with a turn of 120s to buy");
    }

    #[test]
    fn a_sell_out_drains_the_room_and_says_so() {
        use QueueState::*;
        let old = status(Admitting, &counts(50, 10));
        let new = status(Drained, &counts(50, 10));
        let said = announcements(&room(900), Some(&old), &new, &counts(50, 10), Some(&stock(0, 0)));
        assert_eq!(said, [(DRAINED, "sold out: the 40 shoppers still waiting are told SOLD_OUT".to_owned())]);
    }

    #[test]
    fn without_a_pre_queue_the_room_opens_at_the_opening_with_nothing_to_shuffle() {
        use QueueState::*;
        let full = stock(10, 0);
        let reasons = run(
            &room(0),
            &[(NotOpen, counts(0, 0), full), (Drained, counts(0, 0), full), (Admitting, counts(3, 0), full)],
        );
        assert_eq!(reasons, [vec![], vec![OPENED], vec![]], "nobody joined: nothing drained");
        let said = announcements(&room(0), None, &status(Drained, &counts(0, 0)), &counts(0, 0), Some(&full));
        assert_eq!(said[0].1, "the waiting room is open: shoppers join in arrival order, 5 admitted a second");
    }

    #[test]
    fn a_first_look_after_the_opening_still_opens_and_shuffles() {
        use QueueState::*;
        let reasons = run(&room(900), &[(Admitting, counts(12, 0), stock(10, 0))]);
        assert_eq!(reasons, [vec![OPENED, SHUFFLED]], "an operator started late misses nothing");
    }

    #[test]
    fn the_room_wakes_the_operator_when_it_opens_and_while_shoppers_wait() {
        let r = room(900);
        assert_eq!(wake(&r, QueueState::NotOpen, at("09:40:00"), REFRESH), Some(Duration::from_secs(300)));
        assert_eq!(wake(&r, QueueState::NotOpen, at("09:45:00"), REFRESH), None, "waiting for the load");
        assert_eq!(wake(&r, QueueState::PreQueue, at("09:50:00"), REFRESH), Some(REFRESH));
        assert_eq!(wake(&r, QueueState::Admitting, at("10:00:01"), REFRESH), Some(REFRESH));
        assert_eq!(wake(&r, QueueState::Drained, at("10:05:00"), REFRESH), None);
        assert_eq!(wake(&r, QueueState::Closed, at("11:00:00"), REFRESH), None);
    }
}
