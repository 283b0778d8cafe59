//! A purchase's first answer outlives the stock engine: its Idempotency-Key is committed
//! with its order, a sale the engine lost is rebuilt with every key's first order (also
//! on the purchase path, never answered `SALE_NOT_FOUND`), an order reserved in the lost
//! engine is not committed after the rebuild (it would hold units the rebuilt sale does
//! not count), and the unique (shopper, sale, key) index turns a second order for one
//! key into the first order's answer, its units given back. On MariaDB + Redis and on
//! SQLite + the in-process engine.

mod common;

use common::{backends, terms, Service};
use goodsmall_order::{
    domain::{OrderStatus, PurchaseQuantity},
    orders::NewOrder,
    purchase::PurchaseOutcome,
    sales::Sale,
    writer::{CommitError, OrderWriter, Recorded},
};
use goodsmall_platform::{
    events::{contracts::OrderLine, RelayHandle},
    extract::IdempotencyKey,
};
use goodsmall_sale::{Quantity, Refusal, Reservation, ReservationRequest, SaleId, UserId};

async fn buy(service: &Service, sale: &Sale, user_id: i64, key: &str) -> PurchaseOutcome {
    let key = IdempotencyKey::parse(key).unwrap();
    service
        .purchases
        .purchase(SaleId(sale.id), UserId(user_id), &key, PurchaseQuantity::parse(1).unwrap(), None)
        .await
        .unwrap()
}

/// The order id and status of an accepted purchase (`repeated` as expected).
fn accepted(outcome: PurchaseOutcome, repeated: bool, what: &str) -> (String, OrderStatus) {
    match outcome {
        PurchaseOutcome::Accepted { order_id, repeated: r, status } if r == repeated => (order_id, status),
        PurchaseOutcome::Accepted { repeated: r, .. } => panic!("{what}: accepted with repeated = {r}"),
        PurchaseOutcome::Refused(refusal) => panic!("{what}: refused {}", refusal.code()),
        PurchaseOutcome::Retry => panic!("{what}: asked to retry"),
    }
}

fn counters(c: Option<goodsmall_sale::SaleCounters>) -> (i64, i64, i64) {
    let c = c.expect("the engine holds the sale");
    assert_eq!(c.initial, c.remaining + c.reserved + c.sold, "conservation: {c:?}");
    (c.remaining, c.reserved, c.sold)
}

fn new_order(sale: &Sale, id: &str, user_id: i64, key: &str) -> NewOrder {
    let line = OrderLine { product_id: sale.product_id, quantity: 1, unit_price_cents: sale.price.cents() };
    NewOrder { id: id.into(), user_id, sale_id: Some(sale.id), lines: vec![line], idempotency_key: Some(key.into()) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_the_engine_lost_its_data_gets_its_first_order() {
    for backend in backends().await {
        let name = backend.database().split(':').next().unwrap().to_owned();
        let service = backend.start().await;
        let sale =
            service.sales.create(goodsmall_order::sales::NewSale { per_user_limit: 1, ..terms(5) }).await.unwrap();
        let (kept, status) = accepted(buy(&service, &sale, 1, "buy-1").await, false, &name);
        assert_eq!(status, OrderStatus::Processing, "{name}");
        let (canceled, _) = accepted(buy(&service, &sale, 2, "buy-2").await, false, &name);
        assert!(service
            .orders
            .transition(&canceled, &[OrderStatus::Processing], OrderStatus::Canceled, None)
            .await
            .unwrap());
        service.engine.release(sale.id, &canceled).await.unwrap();
        assert_eq!(counters(service.engine.counters(sale.id).await.unwrap()), (4, 1, 0), "{name}");

        // The store loses the sale while the service runs: the retry rebuilds it first.
        assert!(service.engine.remove_sale(sale.id).await.unwrap());
        assert_eq!(
            accepted(buy(&service, &sale, 1, "buy-1").await, true, &name),
            (kept.clone(), OrderStatus::Processing),
            "{name}: not a second order"
        );
        assert_eq!(
            counters(service.engine.counters(sale.id).await.unwrap()),
            (4, 1, 0),
            "{name}: rebuilt from the orders, no unit taken"
        );
        assert_eq!(
            accepted(buy(&service, &sale, 2, "buy-2").await, true, &name),
            (canceled.clone(), OrderStatus::Canceled),
            "{name}: its real status"
        );

        // And after a restart with an emptied engine (rebuilt at start).
        let service = backend.restart(service).await;
        assert_eq!(accepted(buy(&service, &sale, 1, "buy-1").await, true, &name).0, kept, "{name}");
        assert_eq!(
            accepted(buy(&service, &sale, 2, "buy-2").await, true, &name),
            (canceled, OrderStatus::Canceled),
            "{name}"
        );
        assert!(
            matches!(buy(&service, &sale, 1, "buy-1-again").await, PurchaseOutcome::Refused(Refusal::PurchaseLimit)),
            "{name}: the limit still counts the first order"
        );
        assert_eq!(counters(service.engine.counters(sale.id).await.unwrap()), (4, 1, 0), "{name}");
        let (fresh, _) = accepted(buy(&service, &sale, 2, "buy-2-again").await, false, &name);
        assert_ne!(fresh, kept, "{name}: a new key is a new purchase");
        service.stop().await;
    }
}

/// This replica has flagged the sale sold out (it answers from memory and one read) when
/// the store loses it: a retry still gets its first order, not `SOLD_OUT`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_of_a_sold_out_sale_the_engine_lost_gets_its_first_order() {
    for backend in backends().await {
        let name = backend.database().split(':').next().unwrap().to_owned();
        let service = backend.start().await;
        let sale = service.sales.create(terms(1)).await.unwrap();
        let (first, _) = accepted(buy(&service, &sale, 1, "last-unit").await, false, &name);
        assert!(
            matches!(buy(&service, &sale, 2, "too-late").await, PurchaseOutcome::Refused(Refusal::SoldOut)),
            "{name}: flagged sold out"
        );
        assert!(service.engine.remove_sale(sale.id).await.unwrap());
        assert_eq!(
            accepted(buy(&service, &sale, 1, "last-unit").await, true, &name),
            (first, OrderStatus::Processing),
            "{name}"
        );
        assert!(
            matches!(buy(&service, &sale, 2, "too-late").await, PurchaseOutcome::Refused(Refusal::SoldOut)),
            "{name}: still sold out"
        );
        assert_eq!(counters(service.engine.counters(sale.id).await.unwrap()), (0, 1, 0), "{name}");
        service.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_reserved_in_the_lost_engine_is_not_committed_after_the_rebuild() {
    for backend in backends().await {
        let name = backend.database().split(':').next().unwrap().to_owned();
        let service = backend.start().await;
        let sale = service.sales.create(terms(3)).await.unwrap();
        let (writer, task) = OrderWriter::start(service.orders.database().clone(), RelayHandle::default(), 1);
        // Reserved, and the store loses everything before the order is committed.
        let now = goodsmall_platform::clock::now_millis();
        let Reservation::Reserved { epoch: lost, .. } = service
            .engine
            .reserve(&ReservationRequest {
                sale: SaleId(sale.id),
                user: UserId(7),
                key: "k7",
                quantity: Quantity::new(1).unwrap(),
                order: "o-lost",
                at_ms: now,
                turn_ends_ms: None,
            })
            .await
            .unwrap()
        else {
            panic!("{name}")
        };
        assert!(service.engine.remove_sale(sale.id).await.unwrap());
        // Rebuilt here, or by the service's own tick just before: either way from the orders.
        service.sales.restore(&sale).await.unwrap();
        assert_eq!(
            counters(service.engine.counters(sale.id).await.unwrap()),
            (3, 0, 0),
            "{name}: rebuilt, nothing held"
        );
        let refused = writer.persist_new(new_order(&sale, "o-lost", 7, "k7"), lost).await;
        assert!(matches!(refused, Err(CommitError::ReservationLost { .. })), "{name}: {refused:?}");
        assert!(service.orders.find("o-lost").await.unwrap().is_none(), "{name}: not recorded");

        // The same purchase tried again is reserved in the rebuilt sale and committed.
        let Reservation::Reserved { order_id, epoch, .. } = service
            .engine
            .reserve(&ReservationRequest {
                sale: SaleId(sale.id),
                user: UserId(7),
                key: "k7",
                quantity: Quantity::new(1).unwrap(),
                order: "o-new",
                at_ms: now,
                turn_ends_ms: None,
            })
            .await
            .unwrap()
        else {
            panic!("{name}")
        };
        assert!(epoch > lost, "{name}: a new epoch");
        assert_eq!(
            writer.persist_new(new_order(&sale, &order_id, 7, "k7"), epoch).await.unwrap(),
            Recorded::Committed,
            "{name}"
        );
        assert_eq!(
            counters(service.engine.counters(sale.id).await.unwrap()),
            (2, 1, 0),
            "{name}: one unit, held by the one order"
        );
        drop(writer);
        task.await.unwrap();
        service.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_order_for_one_key_is_refused_and_answered_with_the_first() {
    for backend in backends().await {
        let name = backend.database().split(':').next().unwrap().to_owned();
        let service = backend.start().await;
        let sale = service.sales.create(terms(10)).await.unwrap();
        let (writer, task) = OrderWriter::start(service.orders.database().clone(), RelayHandle::default(), 1);
        assert_eq!(writer.persist_new(new_order(&sale, "first", 3, "kk"), 0).await.unwrap(), Recorded::Committed);
        // In one batch with other purchases: only the second order of "kk" is refused.
        let mut batch = tokio::task::JoinSet::new();
        for (id, user, key) in [("a", 4, "ka"), ("second", 3, "kk"), ("b", 5, "kb"), ("c", 3, "kc")] {
            let (writer, order) = (writer.clone(), new_order(&sale, id, user, key));
            batch.spawn(async move { (order.id.clone(), writer.persist_new(order, 0).await.unwrap()) });
        }
        let mut answers: Vec<(String, Recorded)> = batch.join_all().await;
        answers.sort_by(|a, b| a.0.cmp(&b.0));
        let taken = Recorded::KeyTaken { first_order_id: "first".into() };
        assert_eq!(
            answers,
            [("a", Recorded::Committed), ("b", Recorded::Committed), ("c", Recorded::Committed), ("second", taken)]
                .map(|(id, r)| (id.to_owned(), r)),
            "{name}"
        );
        assert!(service.orders.find("second").await.unwrap().is_none(), "{name}");
        drop(writer);
        task.await.unwrap();
        service.stop().await;
    }
}

/// The engine lost a key's record but not the sale (a failover to a replica that had
/// not caught up): the purchase path still answers the first order and takes no unit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_the_engine_forgot_still_answers_its_first_order() {
    let backend = backends().await.remove(0);
    let common::Backend::Distributed { redis, .. } = &backend else { panic!("MariaDB + Redis first") };
    let service = backend.start().await;
    let sale = service.sales.create(goodsmall_order::sales::NewSale { per_user_limit: 2, ..terms(5) }).await.unwrap();
    let (first, _) = accepted(buy(&service, &sale, 1, "buy-1").await, false, "first");
    let mut raw = redis::Client::open(redis.as_str()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let forgotten: i64 =
        redis::AsyncCommands::hdel(&mut raw, goodsmall_sale::keys::idempotency(sale.id), "1:buy-1").await.unwrap();
    assert_eq!(forgotten, 1);
    assert_eq!(accepted(buy(&service, &sale, 1, "buy-1").await, true, "retry").0, first, "the unique index answers");
    assert_eq!(counters(service.engine.counters(sale.id).await.unwrap()), (4, 1, 0), "the retry's unit went back");
    // Under the limit's cap, the refusal hides the first answer: the orders table has it.
    accepted(buy(&service, &sale, 1, "buy-1b").await, false, "second purchase");
    let _: i64 =
        redis::AsyncCommands::hdel(&mut raw, goodsmall_sale::keys::idempotency(sale.id), "1:buy-1").await.unwrap();
    assert_eq!(accepted(buy(&service, &sale, 1, "buy-1").await, true, "retry at the limit").0, first);
    assert_eq!(counters(service.engine.counters(sale.id).await.unwrap()), (3, 2, 0));
    service.stop().await;
}
