//! `kill -9` of the Kafka broker mid-drop, then a restart on the same data: the outbox
//! relay and the consumers recover by themselves.

use crate::harness::{assert_nothing_lost_nothing_oversold, settle, Crowd, Stack};

const STOCK: i64 = 80;
const BUYERS: i64 = 200;
/// Buyers who arrive before the broker is killed: fewer than the stock.
const EARLY: i64 = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_broker_killed_and_restarted_mid_drop_loses_nothing() {
    let mut broker = goodsmall_testkit::KafkaBroker::start().await;
    let (order_db, payment_db) =
        (goodsmall_testkit::mysql_url("broker_order").await, goodsmall_testkit::mysql_url("broker_payment").await);
    let stack = Stack::new(broker.brokers(), order_db, payment_db).await;
    let (mut order, mut payment) = (stack.order(0), stack.payment(0));
    order.start(&stack.client).await;
    payment.start(&stack.client).await;
    let sale = stack.open_sale(&order, STOCK).await;

    // Two crowds, so that stock is left for the purchases made while the broker is down: a
    // single crowd once bought all of it before the kill landed on a loaded machine.
    let early = Crowd::start(&stack, sale, 5000..5000 + EARLY, vec![order.base()], vec![payment.base()]);
    early.wait_accepted(15).await;
    broker.kill_9();
    let late = Crowd::start(&stack, sale, 5000 + EARLY..5000 + BUYERS, vec![order.base()], vec![payment.base()]);
    // Purchases do not need the broker (the order and its event commit to MySQL).
    late.wait_accepted(10).await;
    broker.restart().await;
    let mut seen = early.finish().await;
    seen.add(late.finish().await);

    let settled = settle(&stack, sale).await;
    assert_nothing_lost_nothing_oversold(STOCK, &seen, &settled);
    assert!(
        seen.told.len() as i64 >= STOCK,
        "the crowd bought the stock: {} accepted; {:?}",
        seen.told.len(),
        seen.answers
    );
}
