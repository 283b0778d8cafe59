//! The drop itself: many buyers at once on a multi-threaded runtime, on both backends.
//! Nothing is oversold, no buyer passes the limit, retries never buy twice, and each
//! reservation settles once even when two settlements race.

mod common;

use std::collections::{HashMap, HashSet};

use common::{assert_conserved, engines, sale, OPENS};
use goodsmall_sale::{Quantity, Refusal, Reservation, ReservationRequest, SaleId, Settle, StockEngine, UserId};

/// 1,000 buyers for 100 units, limit 1: exactly 100 win, everyone else hears sold out.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_buyers_for_a_hundred_units() {
    for e in engines().await {
        let n = e.backend_name();
        e.load_sale(&sale(5, 100, 1)).await.unwrap();
        let tasks: Vec<_> = (0..1000i64)
            .map(|user| {
                let e = e.clone();
                tokio::spawn(async move {
                    (
                        user,
                        e.reserve(&ReservationRequest {
                            sale: SaleId(5),
                            user: UserId(user),
                            key: "buy",
                            quantity: Quantity::new(1).unwrap(),
                            order: &format!("order-{user}"),
                            at_ms: OPENS,
                            turn_ends_ms: None,
                        })
                        .await
                        .unwrap(),
                    )
                })
            })
            .collect();
        let (mut winners, mut sold_out) = (HashSet::new(), 0);
        for task in tasks {
            match task.await.unwrap() {
                (user, Reservation::Reserved { order_id, quantity: 1, repeated: false, .. }) => {
                    assert_eq!(order_id, format!("order-{user}"), "{n}");
                    winners.insert(user);
                }
                (_, Reservation::Refused(Refusal::SoldOut | Refusal::InsufficientStock)) => sold_out += 1,
                other => panic!("{n}: unexpected {other:?}"),
            }
        }
        assert_eq!((winners.len(), sold_out), (100, 900), "{n}");
        let c = assert_conserved(&e, 5).await;
        assert_eq!((c.remaining, c.reserved, c.sold), (0, 100, 0), "{n}");
        for user in [0, 1, 499, 999] {
            assert_eq!(
                e.held_by(SaleId(5), UserId(user)).await.unwrap(),
                i64::from(winners.contains(&user)),
                "{n}: user {user}"
            );
        }
    }
}

/// Limit 2, 150 units, 200 buyers each firing 5 requests at once: three keys, two of
/// them retried. Nobody holds more than 2, a key buys at most once, all units go.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eager_buyers_never_pass_the_limit_or_buy_twice_per_key() {
    const KEYS: [&str; 5] = ["k0", "k1", "k2", "k0", "k1"];
    for e in engines().await {
        let n = e.backend_name();
        e.load_sale(&sale(6, 150, 2)).await.unwrap();
        let tasks: Vec<_> = (0..200i64)
            .flat_map(|user| (0..KEYS.len()).map(move |attempt| (user, attempt)))
            .map(|(user, attempt)| {
                let e = e.clone();
                tokio::spawn(async move {
                    let key = KEYS[attempt];
                    (
                        user,
                        key,
                        e.reserve(&ReservationRequest {
                            sale: SaleId(6),
                            user: UserId(user),
                            key,
                            quantity: Quantity::new(1).unwrap(),
                            order: &format!("o-{user}-{attempt}"),
                            at_ms: OPENS,
                            turn_ends_ms: None,
                        })
                        .await
                        .unwrap(),
                    )
                })
            })
            .collect();
        // (user, key) → (order ids answered, how many answers were not repeats)
        let mut per_key = HashMap::<(i64, &str), (HashSet<String>, usize)>::new();
        for task in tasks {
            match task.await.unwrap() {
                (user, key, Reservation::Reserved { order_id, repeated, .. }) => {
                    let entry = per_key.entry((user, key)).or_default();
                    entry.0.insert(order_id);
                    entry.1 += usize::from(!repeated);
                }
                (
                    _,
                    _,
                    Reservation::Refused(Refusal::SoldOut | Refusal::InsufficientStock | Refusal::PurchaseLimit),
                ) => {}
                other => panic!("{n}: unexpected {other:?}"),
            }
        }
        for ((user, key), (orders, firsts)) in &per_key {
            assert_eq!((orders.len(), *firsts), (1, 1), "{n}: user {user} key {key} bought {orders:?}");
        }
        let mut per_user = HashMap::<i64, i64>::new();
        for (user, _) in per_key.keys() {
            *per_user.entry(*user).or_default() += 1;
        }
        for user in 0..200 {
            let bought = per_user.get(&user).copied().unwrap_or(0);
            assert!(bought <= 2, "{n}: user {user} holds {bought}");
            assert_eq!(
                e.held_by(SaleId(6), UserId(user)).await.unwrap(),
                bought,
                "{n}: the engine's count for user {user}"
            );
        }
        assert_eq!(per_user.values().sum::<i64>(), 150, "{n}: every unit reserved once");
        let c = assert_conserved(&e, 6).await;
        assert_eq!((c.remaining, c.reserved), (0, 150), "{n}");
    }
}

/// Buying while others confirm and release, each settlement fired twice at once: every
/// reservation settles exactly once and the counters add up to what the buyers did.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_settlements_settle_once() {
    for e in engines().await {
        let n = e.backend_name();
        e.load_sale(&sale(7, 60, 3)).await.unwrap();
        let tasks: Vec<_> = (0..150i64).map(|user| tokio::spawn(buyer(e.clone(), user))).collect();
        let (mut reserved, mut sold) = (0, 0);
        for task in tasks {
            let (user, quantity, outcome) = task.await.unwrap();
            let holds = match outcome {
                Outcome::Refused | Outcome::Released => 0,
                Outcome::Unpaid => {
                    reserved += quantity;
                    quantity
                }
                Outcome::Paid => {
                    sold += quantity;
                    quantity
                }
            };
            assert_eq!(e.held_by(SaleId(7), UserId(user)).await.unwrap(), holds, "{n}: user {user} {outcome:?}");
        }
        let c = assert_conserved(&e, 7).await;
        assert_eq!((c.reserved, c.sold), (reserved, sold), "{n}");
        assert!(c.sold > 0 && c.reserved > 0, "{n}: the scenario exercised both: {c:?}");
    }
}

#[derive(Debug, Clone, Copy)]
enum Outcome {
    Refused,
    Unpaid,
    Paid,
    Released,
}

/// Reserves 1–2 units, then (by user) confirms twice, releases twice, or leaves it
/// unpaid; the two settlements race on separate tasks and exactly one may win.
async fn buyer(e: StockEngine, user: i64) -> (i64, i64, Outcome) {
    let quantity = 1 + user % 2;
    let order = format!("o-{user}");
    let Reservation::Reserved { .. } = e
        .reserve(&ReservationRequest {
            sale: SaleId(7),
            user: UserId(user),
            key: "k",
            quantity: Quantity::new(quantity).unwrap(),
            order: &order,
            at_ms: OPENS,
            turn_ends_ms: None,
        })
        .await
        .unwrap()
    else {
        return (user, quantity, Outcome::Refused);
    };
    let (confirm, outcome) = match user % 3 {
        0 => (true, Outcome::Paid),
        1 => (false, Outcome::Released),
        _ => return (user, quantity, Outcome::Unpaid),
    };
    let settle = || {
        let (e, order) = (e.clone(), order.clone());
        tokio::spawn(
            async move { if confirm { e.confirm(7, &order).await } else { e.release(7, &order).await }.unwrap() },
        )
    };
    let (a, b) = (settle(), settle());
    let mut answers = [a.await.unwrap(), b.await.unwrap()];
    answers.sort_by_key(|s| *s == Settle::AlreadySettled);
    let won = if confirm { Settle::Confirmed } else { Settle::Released };
    assert_eq!(answers, [won, Settle::AlreadySettled], "user {user}: each settlement once");
    (user, quantity, outcome)
}
