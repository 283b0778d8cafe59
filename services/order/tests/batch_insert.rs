//! The order record on MariaDB and SQLite: the group-commit writer's batch insert
//! (multi-row statements, existing and repeated orders skipped, exactly one
//! `order.created` per new order), and the two shapes of a sale's order that this
//! release reads (its line in `order_lines`, or in the order's row).

mod common;

use goodsmall_order::{
    domain::OrderStatus,
    orders::{NewOrder, OrderRecordError, Orders},
    sales::Sales,
};
use goodsmall_platform::{
    configuration::DatabaseSettings,
    db::Database,
    events::{self, contracts::OrderLine},
    metrics::Metrics,
};
use goodsmall_sale::StockEngine;
use sqlx::Row;

fn order(id: &str, lines: usize) -> NewOrder {
    let lines =
        (0..lines as i64).map(|p| OrderLine { product_id: p + 1, quantity: 2, unit_price_cents: 4_900 }).collect();
    NewOrder { id: id.into(), user_id: 7, sale_id: Some(1), lines, idempotency_key: None }
}

/// A fresh order database with the event tables on MariaDB and on SQLite, each with its URL.
async fn databases(hint: &str) -> Vec<(String, Database)> {
    let mut databases = Vec::new();
    for url in [goodsmall_testkit::mysql_url(hint).await, goodsmall_testkit::sqlite_url(hint)] {
        let settings = DatabaseSettings { url: url.clone().into(), max_connections: 5, create_if_missing: true };
        let db = Database::connect("order", &settings, &goodsmall_order::startup::migrations(), &Metrics::new())
            .await
            .unwrap();
        events::install_schema(&db).await.unwrap();
        databases.push((url, db));
    }
    databases
}

/// The outbox's rows, and the keys of the `order.created` events they hold, sorted.
async fn outbox(db: &Database) -> (usize, Vec<String>) {
    let rows = sqlx::query("SELECT body FROM outbox_events").fetch_all(db.pool()).await.unwrap();
    let mut keys = Vec::new();
    for row in &rows {
        for event in events::stored_events(&row.get::<String, _>(0)).unwrap() {
            assert_eq!(event.kind, events::contracts::kinds::ORDER_CREATED);
            keys.push(event.key);
        }
    }
    keys.sort();
    (rows.len(), keys)
}

/// `ids`, sorted.
fn sorted(ids: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut ids: Vec<String> = ids.into_iter().collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn a_batch_inserts_each_new_order_once_with_its_event() {
    for (url, db) in databases("batch").await {
        let mut tx = db.pool().begin().await.unwrap();
        assert!(Orders::insert(&mut tx, &order("existing", 1)).await.unwrap());
        tx.commit().await.unwrap();

        let mut batch: Vec<NewOrder> = (0..450).map(|n| order(&format!("o{n}"), 1 + n % 3)).collect();
        batch.push(order("existing", 1));
        batch.push(order("o3", 1)); // a retry inside the same batch
        let ids: Vec<&str> = batch.iter().map(|o| o.id.as_str()).collect();
        let existing = Orders::new(db.clone()).existing(&ids).await.unwrap();
        assert_eq!(existing.into_iter().collect::<Vec<_>>(), vec!["existing".to_owned()], "{url}");
        let existing = Orders::new(db.clone()).existing(&ids).await.unwrap();
        let mut tx = db.pool().begin().await.unwrap();
        assert_eq!(Orders::insert_batch(&mut tx, &batch, &existing).await.unwrap().len(), 450, "{url}");
        tx.commit().await.unwrap();

        let count = |sql: &'static str| {
            let db = db.clone();
            async move { sqlx::query(sql).fetch_one(db.pool()).await.unwrap().try_get::<i64, _>(0).unwrap() }
        };
        assert_eq!(count("SELECT COUNT(*) FROM orders").await, 451, "{url}");
        assert_eq!(
            count("SELECT COUNT(*) FROM order_lines").await,
            1 + (0..450).map(|n| 1 + n % 3).sum::<i64>(),
            "{url}"
        );
        let (rows, created) = outbox(&db).await;
        let expected = sorted((0..450).map(|n| format!("o{n}")).chain(["existing".to_owned()]));
        assert_eq!(created, expected, "{url}: one order.created per order");
        // The batch's 450 events share rows (20 to 25 to a row); "existing" has its own.
        assert!(rows <= 1 + 450 / 10, "{url}: {rows} outbox rows for 451 events");
        let o4 = Orders::new(db.clone()).find("o4").await.unwrap().unwrap();
        assert_eq!((o4.lines.len(), o4.total.cents(), o4.status.as_str()), (2, 2 * 2 * 4_900, "PROCESSING"), "{url}");
    }
}

/// An order committed elsewhere meanwhile (not among `existing`), or one whose
/// Idempotency-Key another order holds, is left out; the rest of the batch goes in, in
/// the same transaction, each with its lines and one `order.created`.
#[tokio::test]
async fn a_batch_leaves_out_what_was_committed_meanwhile() {
    for (url, db) in databases("batchrace").await {
        let keyed = |id: &str| NewOrder { idempotency_key: Some("k".into()), ..order(id, 1) };
        let mut tx = db.pool().begin().await.unwrap();
        assert!(Orders::insert(&mut tx, &order("elsewhere", 1)).await.unwrap());
        assert!(Orders::insert(&mut tx, &keyed("first")).await.unwrap());
        tx.commit().await.unwrap();

        let batch = vec![order("a", 2), order("elsewhere", 1), keyed("second"), order("b", 1)];
        let mut tx = db.pool().begin().await.unwrap();
        let inserted = Orders::insert_batch(&mut tx, &batch, &Default::default()).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(inserted.iter().map(|o| o.id.as_str()).collect::<Vec<_>>(), ["a", "b"], "{url}");

        let count = |sql: &'static str| {
            let db = db.clone();
            async move { sqlx::query(sql).fetch_one(db.pool()).await.unwrap().try_get::<i64, _>(0).unwrap() }
        };
        assert_eq!(count("SELECT COUNT(*) FROM orders").await, 4, "{url}");
        assert_eq!(count("SELECT COUNT(*) FROM order_lines").await, 2 + 2 + 1, "{url}");
        assert_eq!(outbox(&db).await.1.len(), 4, "{url}: one order.created per order");
    }
}

// One thread: the grouping bound below counts on it.
#[tokio::test(flavor = "current_thread")]
async fn the_writer_commits_every_purchase_once_whatever_the_group_commits() {
    use goodsmall_order::writer::{OrderWriter, MAX_BATCH};
    use goodsmall_platform::events::RelayHandle;
    const PURCHASES: usize = 400;
    const RETRY_EVERY: usize = 10;

    let settings = |url: String| DatabaseSettings { url: url.into(), max_connections: 8, create_if_missing: true };
    for (url, group_commits) in [
        (goodsmall_testkit::mysql_url("writer1").await, 1),
        (goodsmall_testkit::mysql_url("writer3").await, 3),
        (goodsmall_testkit::sqlite_url("writer"), 3), // SQLite: one at a time regardless
    ] {
        let db = Database::connect(
            "order",
            &settings(url.clone()),
            &goodsmall_order::startup::migrations(),
            &Metrics::new(),
        )
        .await
        .unwrap();
        events::install_schema(&db).await.unwrap();
        let (writer, task) = OrderWriter::start(db.clone(), RelayHandle::default(), group_commits);
        // 400 purchases at once, and a retry of every tenth racing its first attempt.
        let mut purchases = tokio::task::JoinSet::new();
        for n in 0..PURCHASES {
            let first = writer.clone();
            purchases.spawn(async move { first.persist_new(order(&format!("w{n}"), 1), 0).await });
            if n % RETRY_EVERY == 0 {
                let retry = writer.clone();
                purchases.spawn(async move { retry.persist_repeat(order(&format!("w{n}"), 1), 0).await });
            }
        }
        while let Some(answer) = purchases.join_next().await {
            let recorded = answer.unwrap().unwrap_or_else(|e| panic!("{url}: {e:#}"));
            assert_eq!(recorded, goodsmall_order::writer::Recorded::Committed, "{url}");
        }
        drop(writer);
        task.await.unwrap();

        let count = |sql: &'static str| {
            let db = db.clone();
            async move { sqlx::query(sql).fetch_one(db.pool()).await.unwrap().try_get::<i64, _>(0).unwrap() }
        };
        let orders = PURCHASES as i64;
        assert_eq!(count("SELECT COUNT(*) FROM orders").await, orders, "{url} ({group_commits})");
        assert_eq!(count("SELECT COUNT(*) FROM order_lines").await, orders, "{url} ({group_commits})");
        let (_, created) = outbox(&db).await;
        let mut unique = created.clone();
        unique.dedup();
        assert_eq!(
            (created.len() as i64, unique.len()),
            (orders, created.len()),
            "{url} ({group_commits}): one order.created each"
        );
        // On one thread spawning does not yield, so every call is queued before the
        // writer first reads the queue: full batches, the fewest commits there can be
        // (one commit per purchase would be 440).
        let calls = PURCHASES + PURCHASES.div_ceil(RETRY_EVERY);
        let fewest = calls.div_ceil(MAX_BATCH) as u64;
        let batches = db.query_count("order.insert_batch");
        assert!(
            batches <= fewest,
            "{url} ({group_commits}): {calls} purchases queued together took {batches} commits, not {fewest}"
        );
    }
}

/// Migration 0007's shape, which a later release writes for a sale's one-line order: the
/// line in the order's row and no `order_lines` row. This release must read it as it reads
/// its own, or it could not run beside that release in a rolling upgrade.
#[tokio::test]
async fn an_order_reads_the_same_with_its_line_in_its_row_or_in_order_lines() {
    for (url, db) in databases("shapes").await {
        let sale = Sales::new(db.clone(), StockEngine::memory()).create(common::terms(10)).await.unwrap();
        let product = sale.product_id;
        let in_lines = NewOrder {
            id: "in-lines".into(),
            user_id: 7,
            sale_id: Some(sale.id),
            lines: vec![OrderLine { product_id: product, quantity: 2, unit_price_cents: 4_900 }],
            idempotency_key: Some("k1".into()),
        };
        let mut tx = db.pool().begin().await.unwrap();
        assert!(Orders::insert(&mut tx, &in_lines).await.unwrap());
        tx.commit().await.unwrap();
        let millis = chrono::Utc::now().timestamp_millis();
        sqlx::query(
            "INSERT INTO orders (id, user_id, sale_id, status, total_cents, created_at, status_changed_at, \
             idempotency_key, line_product_id, line_quantity, line_unit_price_cents) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind("in-row")
        .bind(8_i64)
        .bind(sale.id)
        .bind(OrderStatus::Processing.as_str())
        .bind(3 * 4_900_i64)
        .bind(millis)
        .bind(millis)
        .bind("k2")
        .bind(product)
        .bind(3_i64)
        .bind(4_900_i64)
        .execute(db.pool())
        .await
        .unwrap();

        let orders = Orders::new(db.clone());
        for (id, user, quantity) in [("in-lines", 7, 2), ("in-row", 8, 3)] {
            let order = orders.find(id).await.unwrap().unwrap_or_else(|| panic!("{url}: {id} not found"));
            assert_eq!((order.user_id, order.sale_id, order.status), (user, Some(sale.id), OrderStatus::Processing));
            assert_eq!(order.total.cents(), quantity * 4_900, "{url}: {id}");
            let lines: Vec<_> = order.lines.iter().map(|l| (l.product_id, l.quantity, l.unit_price.cents())).collect();
            assert_eq!(lines, [(product, quantity, 4_900)], "{url}: {id}");
        }
        // What a rebuild of the sale is made from: a fresh engine lacks the sale, so its
        // counters come from the two orders, whichever shape.
        let counters = Sales::new(db.clone(), StockEngine::memory()).counters(&sale).await.unwrap();
        assert_eq!((counters.reserved, counters.sold, counters.remaining), (5, 0, 5), "{url}");

        // A row with only some of the line's columns is refused, naming the order.
        sqlx::query("UPDATE orders SET line_quantity = NULL WHERE id = 'in-row'").execute(db.pool()).await.unwrap();
        match orders.find("in-row").await {
            Err(OrderRecordError::PartialLine { order_id, .. }) => assert_eq!(order_id, "in-row", "{url}"),
            other => panic!("{url}: a partly set line was read as {other:?}"),
        }
    }
}
