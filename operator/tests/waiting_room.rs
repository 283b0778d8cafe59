//! A FlashSale with a waiting room, reconciled with a controlled clock against the real
//! sale records (the order module on SQLite) and the in-process stock engine: the
//! admission is recorded with the sale and loaded with it, `status.queue` follows the
//! room, and the Events say when it opens, is shuffled and drains (here by a sell-out).

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use goodsmall_operator::{
    crd::{AdmissionMode, AdmissionSpec, FlashSaleSpec, FlashSaleStatus, Phase, QueueState, Warmup},
    local::CatalogueFn,
    reconcile::{Manifest, Outcome, Reconciler},
    records::SaleRecords,
    scaling::NotApplicable,
    waiting_room::{DRAINED, OPENED, SHUFFLED},
};
use goodsmall_order::sales::Sales;
use goodsmall_platform::{configuration::DatabaseSettings, db::Database, metrics::Metrics};
use goodsmall_sale::{
    queue::{QueuePlace, QueueRefusal},
    Quantity, Reservation, ReservationRequest, SaleId, StockEngine, UserId,
};

const REFRESH: Duration = Duration::from_secs(10);

struct Drop {
    reconciler: Reconciler,
    engine: StockEngine,
    spec: FlashSaleSpec,
    status: FlashSaleStatus,
}

impl Drop {
    async fn new(t0: DateTime<Utc>) -> Self {
        let file = std::env::temp_dir().join(format!("{}.db", goodsmall_testkit::unique_name("waiting-room")));
        let settings = DatabaseSettings::sqlite(&file);
        let db = Database::connect("order", &settings, &goodsmall_order::startup::migrations(), &Metrics::new())
            .await
            .expect("a SQLite database");
        let engine = StockEngine::memory();
        let reconciler = Reconciler {
            records: SaleRecords::new(Arc::new(Sales::new(db, engine.clone())), engine.clone()),
            catalogue: Arc::new(CatalogueFn(|_| async { Ok(Some(1)) })),
            scaler: Arc::new(NotApplicable),
            refresh: REFRESH,
        };
        let spec = FlashSaleSpec {
            product_id: 7,
            stock: 2,
            price: "25.00".into(),
            opens_at: t0 + chrono::Duration::minutes(20),
            closes_at: t0 + chrono::Duration::minutes(80),
            per_user_limit: 1,
            warmup: Warmup { lead: "10m".into(), order_replicas: None, payment_replicas: None },
            admission: Some(AdmissionSpec {
                mode: AdmissionMode::Queue,
                pre_queue: "5m".into(),
                admit_per_second: Some(10),
                turn_ttl: "2m".into(),
            }),
        };
        Self { reconciler, engine, spec, status: FlashSaleStatus::default() }
    }

    async fn reconcile(&mut self, now: DateTime<Utc>) -> Outcome {
        let m = Manifest {
            namespace: "shop",
            name: "queued-drop",
            generation: Some(1),
            spec: &self.spec,
            status: &self.status,
            merchant_id: None,
            halted: None,
        };
        let outcome = self.reconciler.apply(&m, now).await.expect("reconcile");
        self.status = outcome.status.clone();
        outcome
    }

    fn sale(&self) -> SaleId {
        SaleId(self.status.sale_id.expect("the sale is recorded"))
    }

    async fn join(&self, user: i64, at: DateTime<Utc>) -> Result<QueuePlace, QueueRefusal> {
        self.engine.join_queue(self.sale(), UserId(user), at.timestamp_millis()).await.unwrap()
    }
}

fn reasons(outcome: &Outcome) -> Vec<&str> {
    outcome.notes.iter().map(|n| n.reason.as_str()).collect()
}

#[tokio::test]
async fn a_queued_drop_opens_its_room_shuffles_it_at_the_opening_and_drains_at_the_sell_out() {
    let t0 = DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap();
    let minutes = |m: i64| t0 + chrono::Duration::minutes(m);
    let mut drop = Drop::new(t0).await;

    let scheduled = drop.reconcile(t0).await;
    assert_eq!(scheduled.status.phase, Some(Phase::Scheduled));
    let queue = scheduled.status.queue.clone().expect("a queued sale shows its room");
    assert_eq!((queue.state, queue.waiting), (QueueState::NotOpen, 0));
    assert_eq!(scheduled.requeue_after, Some(Duration::from_secs(600)), "next: the warm-up");

    // Warm-up: the sale is loaded with its room; nobody can join before opensAt - preQueue.
    let warm = drop.reconcile(minutes(10)).await;
    assert_eq!(warm.status.phase, Some(Phase::WarmingUp));
    assert_eq!(warm.status.queue.as_ref().map(|q| q.state), Some(QueueState::NotOpen));
    assert_eq!(warm.requeue_after, Some(Duration::from_secs(300)), "next: the room opens, before the opening");
    assert!(!reasons(&warm).contains(&OPENED), "{:?}", warm.notes);
    assert_eq!(drop.join(1, minutes(14)).await, Err(QueueRefusal::NotOpen), "the recorded pre-queue is 5m");

    // opensAt - preQueue: the room opens, once.
    let opened = drop.reconcile(minutes(15)).await;
    assert_eq!(reasons(&opened), [OPENED]);
    assert_eq!(opened.status.queue.as_ref().map(|q| q.state), Some(QueueState::PreQueue));
    assert_eq!(opened.requeue_after, Some(REFRESH), "the waiting count stays live");
    for user in 1..=5 {
        assert!(matches!(drop.join(user, minutes(16)).await, Ok(QueuePlace::PreQueue { .. })));
    }
    let pre_queue = drop.reconcile(minutes(17)).await;
    assert!(pre_queue.notes.is_empty(), "{:?}", pre_queue.notes);
    let q = pre_queue.status.queue.clone().unwrap();
    assert_eq!((q.state, q.waiting, q.admitted), (QueueState::PreQueue, 5, 0));

    // The opening: the places are drawn, then shoppers are let in, never more turns than units.
    let opens = drop.spec.opens_at;
    let open = drop.reconcile(opens).await;
    assert_eq!(open.status.phase, Some(Phase::Open));
    let shuffled = open.notes.iter().find(|n| n.reason == SHUFFLED).expect("the shuffle's Event");
    assert_eq!(shuffled.message, "5 shoppers' places drawn; admitting 10 a second, each with a turn of 120s to buy");
    let at = |ms: i64| opens + chrono::Duration::milliseconds(ms);
    let admitting = drop.reconcile(at(1_000)).await;
    let q = admitting.status.queue.clone().unwrap();
    assert_eq!((q.state, q.waiting, q.admitted, q.in_turn), (QueueState::Admitting, 3, 2, 2), "two units, two turns");

    // The two admitted shoppers buy within their turns and pay: nothing is left, and the
    // three still waiting are told SOLD_OUT; the room drains.
    let mut admitted = Vec::new();
    for user in 1..=5 {
        let place = drop.engine.queue_place(drop.sale(), UserId(user), at(1_100).timestamp_millis()).await.unwrap();
        if let Ok(QueuePlace::Admitted { turn_ends_ms, .. }) = place {
            admitted.push((user, turn_ends_ms));
        }
    }
    assert_eq!(admitted.len(), 2, "{admitted:?}");
    let still_waiting = (1..=5).find(|u| admitted.iter().all(|(a, _)| a != u)).unwrap();
    for (user, turn_ends_ms) in admitted {
        let order = format!("order-{user}");
        let reservation = drop
            .engine
            .reserve(&ReservationRequest {
                sale: drop.sale(),
                user: UserId(user),
                key: &order,
                quantity: Quantity::new(1).unwrap(),
                order: &order,
                at_ms: at(1_200).timestamp_millis(),
                turn_ends_ms: Some(turn_ends_ms),
            })
            .await
            .unwrap();
        assert!(matches!(reservation, Reservation::Reserved { .. }), "{reservation:?}");
        drop.engine.confirm(drop.sale().0, &order).await.unwrap();
    }
    let sold_out = drop.reconcile(at(2_000)).await;
    assert_eq!(sold_out.status.phase, Some(Phase::SoldOut));
    let drained = sold_out.notes.iter().find(|n| n.reason == DRAINED).expect("the drain's Event");
    assert_eq!(drained.message, "sold out: the 3 shoppers still waiting are told SOLD_OUT");
    let q = sold_out.status.queue.clone().unwrap();
    assert_eq!((q.state, q.waiting, q.admitted, q.in_turn), (QueueState::Drained, 3, 2, 0));
    let again = drop.reconcile(at(3_000)).await;
    assert!(!reasons(&again).contains(&DRAINED), "drained once: {:?}", again.notes);
    assert_eq!(
        drop.engine.queue_place(drop.sale(), UserId(still_waiting), at(3_000).timestamp_millis()).await.unwrap(),
        Ok(QueuePlace::SoldOut),
        "a shopper still waiting is told at once"
    );

    // The close: the room is closed with the sale.
    let closed = drop.reconcile(drop.spec.closes_at).await;
    assert_eq!(closed.status.queue.as_ref().map(|q| q.state), Some(QueueState::Closed));
}

#[tokio::test]
async fn a_sale_without_a_waiting_room_shows_none_and_a_removed_room_goes() {
    let t0 = DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap();
    let mut drop = Drop::new(t0).await;
    drop.spec.admission = None;
    let warm = drop.reconcile(t0 + chrono::Duration::minutes(10)).await;
    assert_eq!((warm.status.phase, warm.status.queue.clone()), (Some(Phase::WarmingUp), None));
    assert_eq!(
        drop.join(1, t0 + chrono::Duration::minutes(16)).await,
        Err(QueueRefusal::NoWaitingRoom),
        "first come, first served, as before"
    );
}
