//! The phase decision: a pure function of the sale's window, what the stock engine
//! holds, and the time. The reconciler acts on it; tests drive it with a fixed clock.

use std::time::Duration;

use chrono::{DateTime, Utc};
use goodsmall_sale::SaleCounters;

use crate::crd::Phase;

/// The sale's window, from the accepted terms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    pub opens_at: DateTime<Utc>,
    pub closes_at: DateTime<Utc>,
    pub lead: Duration,
}

/// What should be true now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    pub phase: Phase,
    /// The sale must be in the engine (pre-loaded, or rebuilt if lost).
    pub load: bool,
    /// The warm-up replicas must be held.
    pub scale_up: bool,
    /// Purchases must stop now.
    pub close: bool,
    /// When to look again: the next transition, or the live-status refresh while
    /// stock can move; `None` when nothing will change by itself.
    pub requeue_after: Option<Duration>,
}

/// `stock` is the sale's live counters in the engine (`None`: not loaded). `refresh` is
/// how often status is refreshed while stock can move (open, or closed with
/// reservations still settling).
pub fn plan(window: &Window, stock: Option<SaleCounters>, now: DateTime<Utc>, refresh: Duration) -> Plan {
    let until = |t: DateTime<Utc>| (t - now).to_std().unwrap_or(Duration::ZERO);
    let warm_from = window.opens_at - chrono::Duration::from_std(window.lead).unwrap_or(chrono::Duration::MAX);
    let closed_early = stock.is_some_and(|s| s.closed);
    if now >= window.closes_at || closed_early {
        let settling = stock.is_some_and(|s| s.reserved > 0);
        let requeue_after = if settling { Some(refresh) } else { None };
        return Plan { phase: Phase::Closed, load: false, scale_up: false, close: true, requeue_after };
    }
    if now < warm_from {
        return Plan {
            phase: Phase::Scheduled,
            load: false,
            scale_up: false,
            close: false,
            requeue_after: Some(until(warm_from)),
        };
    }
    if now < window.opens_at {
        return Plan {
            phase: Phase::WarmingUp,
            load: true,
            scale_up: true,
            close: false,
            requeue_after: Some(until(window.opens_at)),
        };
    }
    let sold_out = stock.is_some_and(|s| s.remaining == 0);
    let phase = if sold_out { Phase::SoldOut } else { Phase::Open };
    Plan { phase, load: true, scale_up: true, close: false, requeue_after: Some(until(window.closes_at).min(refresh)) }
}

/// The phase shown while the merchant's halt is on: every phase a purchase could be
/// made in reads Halted; an ended or refused sale keeps its phase.
pub fn with_halt(phase: Phase, halted: bool) -> Phase {
    match phase {
        Phase::Scheduled | Phase::WarmingUp | Phase::Open | Phase::SoldOut if halted => Phase::Halted,
        other => other,
    }
}

/// The value of the halt annotation that halts: anything but absent or `"false"`, so a
/// mistyped emergency stop (`yes`, `True`) errs on the side of stopping.
pub fn halt_requested(annotation: Option<&str>) -> bool {
    annotation.is_some_and(|v| v.trim() != "false")
}

#[cfg(test)]
mod tests {
    use super::*;

    const REFRESH: Duration = Duration::from_secs(10);

    fn at(hh_mm_ss: &str) -> DateTime<Utc> {
        format!("2026-12-01T{hh_mm_ss}Z").parse().unwrap()
    }

    fn window() -> Window {
        Window { opens_at: at("10:00:00"), closes_at: at("11:00:00"), lead: Duration::from_secs(600) }
    }

    #[test]
    fn a_halt_shows_over_every_phase_a_purchase_could_be_made_in() {
        for phase in Phase::ALL {
            let expected = match phase {
                Phase::Closed | Phase::Failed | Phase::Halted => phase,
                _ => Phase::Halted,
            };
            assert_eq!(with_halt(phase, true), expected, "{phase:?}");
            assert_eq!(with_halt(phase, false), phase, "{phase:?}");
        }
    }

    #[test]
    fn only_an_absent_or_false_annotation_leaves_the_sale_running() {
        for (value, halts) in [
            (None, false),
            (Some("false"), false),
            (Some(" false "), false),
            (Some("true"), true),
            (Some("yes"), true),
            (Some("True"), true),
            (Some(""), true),
        ] {
            assert_eq!(halt_requested(value), halts, "{value:?}");
        }
    }

    fn stock(remaining: i64, reserved: i64, sold: i64) -> Option<SaleCounters> {
        Some(SaleCounters { remaining, reserved, sold, closed: false, halted: false, ..SaleCounters::default() })
    }

    #[test]
    fn every_transition_by_time_and_state() {
        let w = window();
        let p = plan(&w, None, at("09:00:00"), REFRESH);
        assert_eq!((p.phase, p.load, p.scale_up, p.close), (Phase::Scheduled, false, false, false));
        assert_eq!(p.requeue_after, Some(Duration::from_secs(50 * 60)), "wake up at the warm-up, not before");

        let p = plan(&w, None, at("09:50:00"), REFRESH);
        assert_eq!((p.phase, p.load, p.scale_up), (Phase::WarmingUp, true, true), "warm-up starts at opensAt - lead");
        assert_eq!(p.requeue_after, Some(Duration::from_secs(600)), "next: the opening");

        let p = plan(&w, stock(100, 0, 0), at("09:59:59"), REFRESH);
        assert_eq!(p.phase, Phase::WarmingUp);
        assert_eq!(p.requeue_after, Some(Duration::from_secs(1)));

        let p = plan(&w, stock(100, 0, 0), at("10:00:00"), REFRESH);
        assert_eq!((p.phase, p.load, p.scale_up, p.close), (Phase::Open, true, true, false));
        assert_eq!(p.requeue_after, Some(REFRESH), "status stays live while open");

        let p = plan(&w, stock(0, 3, 97), at("10:30:00"), REFRESH);
        assert_eq!(p.phase, Phase::SoldOut);
        let p = plan(&w, stock(2, 1, 97), at("10:31:00"), REFRESH);
        assert_eq!(p.phase, Phase::Open, "released units reopen a sold-out sale");

        let p = plan(&w, stock(0, 0, 100), at("10:59:55"), REFRESH);
        assert_eq!(p.requeue_after, Some(Duration::from_secs(5)), "the close comes before the next refresh");

        let p = plan(&w, stock(0, 2, 98), at("11:00:00"), REFRESH);
        assert_eq!((p.phase, p.load, p.scale_up, p.close), (Phase::Closed, false, false, true));
        assert_eq!(p.requeue_after, Some(REFRESH), "reservations still settle");
        let p = plan(&w, stock(2, 0, 98), at("11:05:00"), REFRESH);
        assert_eq!(p.requeue_after, None, "nothing moves any more");
    }

    #[test]
    fn a_zero_lead_goes_straight_from_scheduled_to_open() {
        let w = Window { lead: Duration::ZERO, ..window() };
        assert_eq!(plan(&w, None, at("09:59:59"), REFRESH).phase, Phase::Scheduled);
        assert_eq!(plan(&w, None, at("10:00:00"), REFRESH).phase, Phase::Open);
    }

    #[test]
    fn spec_changes_mid_sale_move_the_phase() {
        let w = window();
        let now = at("10:30:00");
        assert_eq!(plan(&w, stock(10, 0, 90), now, REFRESH).phase, Phase::Open);
        let moved_later = Window { opens_at: at("10:35:00"), closes_at: at("12:00:00"), ..w };
        assert_eq!(
            plan(&moved_later, stock(10, 0, 90), now, REFRESH).phase,
            Phase::WarmingUp,
            "window moved later: back to warm-up"
        );
        let moved_much_later = Window { opens_at: at("11:00:00"), closes_at: at("12:00:00"), ..w };
        let p = plan(&moved_much_later, stock(10, 0, 90), now, REFRESH);
        assert_eq!(
            (p.phase, p.scale_up),
            (Phase::Scheduled, false),
            "moved beyond the lead: scheduled again, replicas given back"
        );
        let ended_early = Window { closes_at: at("10:15:00"), ..w };
        assert_eq!(
            plan(&ended_early, stock(10, 0, 90), now, REFRESH).phase,
            Phase::Closed,
            "window moved earlier: closed now"
        );
        assert_eq!(plan(&w, stock(0, 0, 100), now, REFRESH).phase, Phase::SoldOut, "stock lowered to what is sold");
        assert_eq!(plan(&w, stock(50, 0, 100), now, REFRESH).phase, Phase::Open, "stock raised: open again");
        let long_lead =
            Window { lead: Duration::from_secs(3 * 3600), opens_at: at("12:00:00"), closes_at: at("13:00:00") };
        assert_eq!(
            plan(&long_lead, None, now, REFRESH).phase,
            Phase::WarmingUp,
            "a longer lead starts the warm-up sooner"
        );
    }

    #[test]
    fn a_sale_closed_in_the_engine_stays_closed() {
        let closed = Some(SaleCounters {
            remaining: 5,
            reserved: 0,
            sold: 5,
            closed: true,
            halted: false,
            ..SaleCounters::default()
        });
        let p = plan(&window(), closed, at("10:30:00"), REFRESH);
        assert_eq!((p.phase, p.close, p.requeue_after), (Phase::Closed, true, None));
    }
}
