//! Two replicas of the order service and two of the payment service consume as real
//! consumer groups during a drop: the brokers share the partitions between them; one
//! replica of each is killed mid-drop and its partitions move to the survivor.

use std::{
    collections::HashSet,
    time::{Duration, Instant},
};

use crate::harness::{assert_nothing_lost_nothing_oversold, settle, Crowd, Service, Stack, PATIENCE};

const STOCK: i64 = 100;
const BUYERS: i64 = 240;
/// `goodsmall_platform::service::TOPIC_PARTITIONS`: every topic's partition count.
const PARTITIONS: usize = 6;
/// The consumer groups of each service (logical names) and how many topics each reads.
const ORDER_GROUPS: &[&str] = &["order-checkout", "order-saga", "order-stock"];
const PAYMENT_GROUPS: &[&str] = &["payment"];

/// Waits until `condition` holds for the replicas' latest assignments in `group`.
async fn assignments_reach(
    replicas: &[&Service],
    group: &str,
    what: &str,
    condition: impl Fn(&[Option<HashSet<String>>]) -> bool,
) {
    let started = Instant::now();
    loop {
        let now: Vec<Option<HashSet<String>>> = replicas.iter().map(|r| r.assigned(group)).collect();
        if condition(&now) {
            return;
        }
        assert!(started.elapsed() < PATIENCE, "group {group}: {what} not reached in {PATIENCE:?}; assignments {now:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn split_between_both(now: &[Option<HashSet<String>>]) -> bool {
    match now {
        [Some(a), Some(b)] => !a.is_empty() && !b.is_empty() && a.is_disjoint(b) && a.len() + b.len() == PARTITIONS,
        _ => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_replicas_partitions_move_to_the_survivor_and_every_event_is_handled() {
    let brokers = goodsmall_testkit::kafka_brokers().await;
    let (order_db, payment_db) =
        (goodsmall_testkit::mysql_url("rebal_order").await, goodsmall_testkit::mysql_url("rebal_payment").await);
    let stack = Stack::new(brokers, order_db, payment_db).await;
    let (mut order_a, mut order_b) = (stack.order(0), stack.order(1));
    let (mut payment_a, mut payment_b) = (stack.payment(0), stack.payment(1));
    for service in [&mut order_a, &mut order_b, &mut payment_a, &mut payment_b] {
        service.start(&stack.client).await;
    }
    // Each group's 6 partitions are split between the two replicas.
    for group in ORDER_GROUPS {
        assignments_reach(&[&order_a, &order_b], group, "a split between both replicas", split_between_both).await;
    }
    for group in PAYMENT_GROUPS {
        assignments_reach(&[&payment_a, &payment_b], group, "a split between both replicas", split_between_both).await;
    }

    let sale = stack.open_sale(&order_a, STOCK).await;
    let crowd = Crowd::start(
        &stack,
        sale,
        1000..1000 + BUYERS,
        vec![order_a.base(), order_b.base()],
        vec![payment_a.base(), payment_b.base()],
    );
    crowd.wait_accepted(25).await;
    order_b.kill_9();
    payment_b.kill_9();
    // The survivors take over every partition of every group.
    let survivor_has_all = |now: &[Option<HashSet<String>>]| now[0].as_ref().is_some_and(|a| a.len() == PARTITIONS);
    for group in ORDER_GROUPS {
        assignments_reach(&[&order_a], group, "all partitions on the survivor", survivor_has_all).await;
    }
    for group in PAYMENT_GROUPS {
        assignments_reach(&[&payment_a], group, "all partitions on the survivor", survivor_has_all).await;
    }
    let seen = crowd.finish().await;

    assert!(
        seen.failed_attempts.values().sum::<usize>() > 0,
        "some shoppers were cut off by the kill and retried: {:?}",
        seen.failed_attempts
    );
    let settled = settle(&stack, sale).await;
    assert_nothing_lost_nothing_oversold(STOCK, &seen, &settled);
    assert!(
        seen.told.len() as i64 >= STOCK,
        "the crowd bought the stock: {} accepted; {:?}",
        seen.told.len(),
        seen.answers
    );
    // Paid orders: the payment consumer opened a payment for each, whichever replica
    // held its partition (an order that reached COMPLETE went through both groups).
    let complete = settled.orders.values().filter(|(s, _)| s == "COMPLETE").count();
    assert!(complete > 0, "some orders were paid: {:?}", seen.answers);
}
