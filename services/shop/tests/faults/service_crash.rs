//! `kill -9` of the order service, then of the payment service, while purchases are in
//! flight; each restarted on the same data.

use std::sync::atomic::Ordering;

use crate::harness::{assert_nothing_lost_nothing_oversold, settle, Crowd, Stack};

const STOCK: i64 = 100;
const BUYERS: i64 = 300;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_order_and_payment_services_mid_drop_loses_nothing_and_oversells_nothing() {
    let brokers = goodsmall_testkit::kafka_brokers().await;
    let (order_db, payment_db) =
        (goodsmall_testkit::mysql_url("crash_order").await, goodsmall_testkit::mysql_url("crash_payment").await);
    let stack = Stack::new(brokers, order_db, payment_db).await;
    let (mut order, mut payment) = (stack.order(0), stack.payment(0));
    order.start(&stack.client).await;
    payment.start(&stack.client).await;
    let sale = stack.open_sale(&order, STOCK).await;

    let crowd = Crowd::start(&stack, sale, 100..100 + BUYERS, vec![order.base()], vec![payment.base()]);
    crowd.wait_accepted(15).await;
    crowd.wait_in_flight().await;
    let in_flight_at_kill = crowd.in_flight.load(Ordering::SeqCst);
    order.kill_9();
    order.start(&stack.client).await;
    crowd.wait_accepted(40).await;
    payment.kill_9();
    payment.start(&stack.client).await;
    let seen = crowd.finish().await;

    assert!(in_flight_at_kill > 0, "purchases were in flight when the order service was killed");
    assert!(
        seen.failed_attempts.get("connection refused").copied().unwrap_or(0) > 0,
        "some purchases or payments were retried across a kill: {:?}",
        seen.failed_attempts
    );
    assert!(
        seen.retried_purchases > 0,
        "some purchases were retried across the kill ({} of them then accepted): {:?}",
        seen.accepted_after_retry,
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
}
