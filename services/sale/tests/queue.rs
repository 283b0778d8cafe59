//! The waiting room's contract (`goodsmall_sale::queue`), on both backends: the same
//! calls at the same instants must give the same answers (but for the random order of
//! the pre-queue, which is checked statistically instead).

mod common;

use common::{engines, sale, OPENS};
use goodsmall_sale::{
    queue::{QueueCounts, QueuePlace, QueueRefusal, QueueTerms},
    Quantity, Refusal, Reservation, ReservationRequest, SaleDefinition, SaleId, StockEngine, UserId,
};

const TERMS: QueueTerms = QueueTerms { pre_queue_ms: 10_000, admit_per_second: 10, turn_ttl_ms: 5_000 };

fn queued(sale_id: i64, stock: i64, terms: QueueTerms) -> SaleDefinition {
    SaleDefinition { queue: Some(terms), ..sale(sale_id, stock, 1) }
}

async fn join(e: &StockEngine, sale: i64, user: i64, at: i64) -> Result<QueuePlace, QueueRefusal> {
    e.join_queue(SaleId(sale), UserId(user), at).await.unwrap()
}

async fn place(e: &StockEngine, sale: i64, user: i64, at: i64) -> Result<QueuePlace, QueueRefusal> {
    e.queue_place(SaleId(sale), UserId(user), at).await.unwrap()
}

async fn counts(e: &StockEngine, sale: i64, at: i64) -> QueueCounts {
    e.queue_counts(SaleId(sale), at).await.unwrap().unwrap()
}

async fn buy(e: &StockEngine, sale: i64, user: i64, at: i64, turn_ends_ms: Option<i64>) -> Reservation {
    let order = format!("o-{sale}-{user}-{at}");
    let key = format!("k-{at}");
    e.reserve(&ReservationRequest {
        sale: SaleId(sale),
        user: UserId(user),
        key: &key,
        quantity: Quantity::new(1).unwrap(),
        order: &order,
        at_ms: at,
        turn_ends_ms,
    })
    .await
    .unwrap()
}

/// The admitted users among `users` at `at`, with their turn's end.
async fn admitted(e: &StockEngine, sale: i64, users: impl IntoIterator<Item = i64>, at: i64) -> Vec<(i64, i64)> {
    let mut found = Vec::new();
    for user in users {
        if let Ok(QueuePlace::Admitted { turn_ends_ms, .. }) = place(e, sale, user, at).await {
            found.push((user, turn_ends_ms));
        }
    }
    found
}

#[tokio::test]
async fn joining_is_once_per_shopper_within_the_pre_queue_and_nobody_is_placed_before_the_opening() {
    for e in engines().await {
        let name = e.backend_name();
        e.load_sale(&queued(1, 5, TERMS)).await.unwrap();
        e.load_sale(&sale(2, 5, 1)).await.unwrap();
        assert_eq!(join(&e, 1, 1, OPENS - 10_001).await, Err(QueueRefusal::NotOpen), "{name}");
        assert_eq!(join(&e, 2, 1, OPENS - 1).await, Err(QueueRefusal::NoWaitingRoom), "{name}");
        assert_eq!(join(&e, 3, 1, OPENS - 1).await, Err(QueueRefusal::UnknownSale), "{name}");
        assert_eq!(place(&e, 1, 1, OPENS - 1).await, Err(QueueRefusal::NotJoined), "{name}");
        for user in 1..=3 {
            assert_eq!(
                join(&e, 1, user, OPENS - 10_000).await,
                Ok(QueuePlace::PreQueue { joined: user as u64, opens_at_ms: OPENS })
            );
        }
        assert_eq!(
            join(&e, 1, 2, OPENS - 5).await,
            Ok(QueuePlace::PreQueue { joined: 3, opens_at_ms: OPENS }),
            "{name}: a retry"
        );
        assert_eq!(counts(&e, 1, OPENS - 1).await, QueueCounts { joined: 3, ..Default::default() }, "{name}");
        // Before the opening nobody is admitted, however long they waited.
        assert_eq!(buy(&e, 1, 1, OPENS - 1, None).await, Reservation::Refused(Refusal::SaleNotOpen), "{name}");
        assert!(admitted(&e, 1, 1..=3, OPENS - 1).await.is_empty(), "{name}");
        // Without a turn, an open sale with a waiting room refuses.
        assert_eq!(buy(&e, 1, 1, OPENS, None).await, Reservation::Refused(Refusal::AdmissionRequired), "{name}");
        assert_eq!(
            buy(&e, 1, 1, OPENS + 10, Some(OPENS + 10)).await,
            Reservation::Refused(Refusal::AdmissionExpired),
            "{name}"
        );
        e.remove_sale(1).await.unwrap();
        e.remove_sale(2).await.unwrap();
    }
}

#[tokio::test]
async fn admission_follows_the_rate_in_place_order_and_never_outruns_the_units_left() {
    for e in engines().await {
        let name = e.backend_name();
        e.load_sale(&queued(11, 5, TERMS)).await.unwrap();
        for user in 1..=20 {
            join(&e, 11, user, OPENS - 1_000 + user).await.unwrap();
        }
        // 10 a second: one after 100 ms, and the rest wait in a permutation of 1..19.
        assert_eq!(counts(&e, 11, OPENS + 100).await.admitted, 1, "{name}");
        let mut positions = Vec::new();
        for user in 1..=20 {
            match place(&e, 11, user, OPENS + 100).await.unwrap() {
                QueuePlace::Waiting { position, units_left: 5, admit_per_second: 10, .. } => positions.push(position),
                QueuePlace::Admitted { turn_ends_ms, number } => {
                    assert_eq!((turn_ends_ms, number), (OPENS + 100 + 5_000, 1), "{name}")
                }
                other => panic!("{name}: {other:?}"),
            }
        }
        positions.sort_unstable();
        assert_eq!(positions, (1..=19).collect::<Vec<u64>>(), "{name}");
        // After a second the rate allows 10, the 5 units only 5 unbought turns.
        assert_eq!(
            counts(&e, 11, OPENS + 1_000).await,
            QueueCounts { joined: 20, admitted: 5, expired: 0, in_turn: 5 }
        );
        let turns = admitted(&e, 11, 1..=20, OPENS + 1_000).await;
        assert_eq!(turns.len(), 5, "{name}");
        // One buys in their turn: the unit and the turn go together, no room for more.
        let (buyer, ends) = turns[0];
        assert!(matches!(buy(&e, 11, buyer, OPENS + 1_100, Some(ends)).await, Reservation::Reserved { .. }));
        assert_eq!(counts(&e, 11, OPENS + 3_000).await.admitted, 5, "{name}: 4 units, 4 turns on");
        let again = place(&e, 11, buyer, OPENS + 3_000).await;
        assert!(matches!(again, Ok(QueuePlace::Admitted { turn_ends_ms, .. }) if turn_ends_ms == ends));
        // The others let their turns run out: counted, and their rooms go on.
        let later = counts(&e, 11, OPENS + 1_000 + 5_000 + 1).await;
        assert_eq!((later.expired, later.admitted, later.in_turn), (4, 9, 4), "{name}: {later:?}");
        assert!(admitted(&e, 11, 1..=20, OPENS + 6_001).await.len() >= 4, "{name}");
        assert!(matches!(place(&e, 11, turns[1].0, OPENS + 6_001).await, Ok(QueuePlace::Expired { .. })), "{name}");
        e.remove_sale(11).await.unwrap();
    }
}

#[tokio::test]
async fn late_arrivals_queue_behind_the_pre_queue_in_arrival_order() {
    for e in engines().await {
        let name = e.backend_name();
        let slow = QueueTerms { admit_per_second: 1, ..TERMS };
        e.load_sale(&queued(21, 100, slow)).await.unwrap();
        for user in 1..=10 {
            join(&e, 21, user, OPENS - 100).await.unwrap();
        }
        for user in 11..=15 {
            let at = OPENS + user * 10;
            let expected = (user - 10 + 10) as u64; // behind the 10 of the pre-queue (none admitted yet)
            assert_eq!(
                join(&e, 21, user, at).await,
                Ok(QueuePlace::Waiting { position: expected, units_left: 100, admit_per_second: 1, number: expected }),
                "{name}"
            );
        }
        assert_eq!(
            place(&e, 21, 15, OPENS + 1_500).await,
            Ok(QueuePlace::Waiting { position: 14, units_left: 100, admit_per_second: 1, number: 15 })
        );
        e.remove_sale(21).await.unwrap();
    }
}

#[tokio::test]
async fn a_sell_out_tells_every_waiting_shopper_at_once_and_released_units_let_as_many_in() {
    for e in engines().await {
        let name = e.backend_name();
        let fast = QueueTerms { admit_per_second: 1_000, ..TERMS };
        e.load_sale(&queued(31, 2, fast)).await.unwrap();
        for user in 1..=10 {
            join(&e, 31, user, OPENS - 100).await.unwrap();
        }
        let turns = admitted(&e, 31, 1..=10, OPENS + 100).await;
        assert_eq!(turns.len(), 2, "{name}");
        let mut orders = Vec::new();
        for &(user, ends) in &turns {
            match buy(&e, 31, user, OPENS + 200, Some(ends)).await {
                Reservation::Reserved { order_id, .. } => orders.push(order_id),
                other => panic!("{name}: {other:?}"),
            }
        }
        // Every unit held by an unpaid order: the queue waits, it may come back.
        let waiting = (1..=10).find(|u| turns.iter().all(|t| t.0 != *u)).unwrap();
        assert!(matches!(place(&e, 31, waiting, OPENS + 300).await, Ok(QueuePlace::Waiting { units_left: 0, .. })));
        // One order declined: one unit back, one more shopper admitted (not a burst).
        e.release(31, &orders[0]).await.unwrap();
        assert_eq!(counts(&e, 31, OPENS + 5_000).await.admitted, 3, "{name}");
        // The other paid, the returned unit bought: sold out for good.
        e.confirm(31, &orders[1]).await.unwrap();
        let (third, ends) =
            admitted(&e, 31, 1..=10, OPENS + 5_000).await.into_iter().find(|t| !turns.contains(t)).unwrap();
        let Reservation::Reserved { order_id, .. } = buy(&e, 31, third, OPENS + 5_001, Some(ends)).await else {
            panic!("{name}: the admitted third shopper could not buy")
        };
        e.confirm(31, &order_id).await.unwrap();
        for user in 1..=10 {
            let answer = place(&e, 31, user, OPENS + 5_002).await.unwrap();
            if [turns[0].0, turns[1].0, third].contains(&user) {
                assert!(matches!(answer, QueuePlace::Admitted { .. }), "{name}: {user} {answer:?}");
            } else {
                assert_eq!(answer, QueuePlace::SoldOut, "{name}: {user}");
            }
        }
        assert_eq!(join(&e, 31, 99, OPENS + 5_003).await, Err(QueueRefusal::SoldOut), "{name}");
        e.remove_sale(31).await.unwrap();
    }
}

#[tokio::test]
async fn nothing_is_admitted_while_halted_and_a_closed_sale_says_so() {
    for e in engines().await {
        let name = e.backend_name();
        e.load_sale(&queued(41, 100, TERMS)).await.unwrap();
        for user in 1..=5 {
            join(&e, 41, user, OPENS - 100).await.unwrap();
        }
        e.set_halted(41, true).await.unwrap();
        assert_eq!(counts(&e, 41, OPENS + 2_000).await.admitted, 0, "{name}");
        e.set_halted(41, false).await.unwrap();
        assert_eq!(counts(&e, 41, OPENS + 2_100).await.admitted, 1, "{name}: the halt earned nothing");
        e.close_sale(41).await.unwrap();
        let mut closed = 0;
        for user in 1..=5 {
            if place(&e, 41, user, OPENS + 2_200).await == Ok(QueuePlace::Closed) {
                closed += 1;
            }
        }
        assert_eq!(closed, 4, "{name}: every waiting shopper is told the sale closed");
        assert_eq!(join(&e, 41, 9, OPENS + 2_300).await, Err(QueueRefusal::Closed), "{name}");
        e.remove_sale(41).await.unwrap();
    }
}

/// Spearman's rank correlation of join order and place: about 0 for a shuffle (its
/// standard deviation is 1/√(n−1) ≈ 0.022 for 2,000), exactly 1 for arrival order.
fn rank_correlation(places: &[u64]) -> f64 {
    let n = places.len() as f64;
    let d2: f64 = places.iter().enumerate().map(|(i, &p)| (i as f64 + 1.0 - p as f64).powi(2)).sum();
    1.0 - 6.0 * d2 / (n * (n * n - 1.0))
}

#[tokio::test]
async fn the_pre_queue_is_a_uniform_shuffle_at_the_opening() {
    const SHOPPERS: i64 = 2_000;
    for e in engines().await {
        let name = e.backend_name();
        let terms = QueueTerms { admit_per_second: 1, ..TERMS };
        e.load_sale(&queued(51, 100, terms)).await.unwrap();
        for user in 1..=SHOPPERS {
            join(&e, 51, user, OPENS - 5_000 + user).await.unwrap();
        }
        // Admitted at the opening's first 100 ms: nobody yet; everyone has a place.
        let mut places = Vec::new();
        for user in 1..=SHOPPERS {
            match place(&e, 51, user, OPENS + 100).await.unwrap() {
                QueuePlace::Waiting { position, .. } => places.push(position),
                other => panic!("{name}: {other:?}"),
            }
        }
        let mut sorted = places.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (1..=SHOPPERS as u64).collect::<Vec<_>>(), "{name}: a permutation");
        let rho = rank_correlation(&places);
        assert!(rho.abs() < 0.1, "{name}: places follow join order (Spearman's ρ = {rho})");
        assert!((rank_correlation(&sorted) - 1.0).abs() < 1e-9, "the statistic detects arrival order");
        e.remove_sale(51).await.unwrap();
    }
}
