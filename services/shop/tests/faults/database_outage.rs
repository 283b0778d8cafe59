//! MariaDB killed mid-drop: purchases answer 503 problem+json with a stable code, none is
//! oversold, and once MariaDB is back purchases resume and the saga settles exactly.

use reqwest::StatusCode;

use crate::harness::{assert_nothing_lost_nothing_oversold, settle, Crowd, Stack};

const STOCK: i64 = 80;
const BUYERS: i64 = 200;
/// Buyers who arrive before MariaDB is killed: fewer than the stock.
const EARLY: i64 = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purchases_answer_503_while_the_database_is_down_and_resume_after() {
    let mut mariadb = goodsmall_testkit::MariaDb::start().await;
    let brokers = goodsmall_testkit::kafka_brokers().await;
    let stack = Stack::new(brokers, mariadb.url("outage_order"), mariadb.url("outage_payment")).await;
    let (mut order, mut payment) = (stack.order(0), stack.payment(0));
    order.start(&stack.client).await;
    payment.start(&stack.client).await;
    let sale = stack.open_sale(&order, STOCK).await;

    // Two crowds, so that stock is left for the buyers who arrive while MariaDB is down
    // (one crowd could buy it all before the kill lands on a loaded machine).
    let early = Crowd::start(&stack, sale, 9000..9000 + EARLY, vec![order.base()], vec![payment.base()]);
    early.wait_accepted(10).await;
    mariadb.kill_9();
    let late = Crowd::start(&stack, sale, 9000 + EARLY..9000 + BUYERS, vec![order.base()], vec![payment.base()]);
    // Purchases now fail with 503 until MariaDB is back.
    let started = std::time::Instant::now();
    while late.seen.lock().unwrap().server_errors.len() < 5 {
        assert!(started.elapsed() < crate::harness::PATIENCE, "no purchase was refused while MariaDB was down");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let accepted_while_down = late.accepted();
    mariadb.restart().await;
    late.wait_accepted(accepted_while_down + 5).await;
    let mut seen = early.finish().await;
    seen.add(late.finish().await);

    for (status, content_type, problem) in &seen.server_errors {
        assert_eq!(*status, StatusCode::SERVICE_UNAVAILABLE, "{problem}");
        assert_eq!(content_type, "application/problem+json", "{problem}");
        assert_eq!(problem["code"], "SERVICE_UNAVAILABLE", "{problem}");
    }
    let settled = settle(&stack, sale).await;
    assert_nothing_lost_nothing_oversold(STOCK, &seen, &settled);
    assert!(
        seen.told.len() as i64 >= STOCK,
        "the crowd bought the stock after the outage: {} accepted; {:?}",
        seen.told.len(),
        seen.answers
    );
}
