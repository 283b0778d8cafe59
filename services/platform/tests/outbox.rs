//! The outbox with its direct publisher: events claimed before their commit are
//! published from memory once each and their rows marked, with the relay reading the
//! outbox only as the fallback; an event whose transaction rolled back is never
//! published; a claim given back (a failed commit, a failed publish) is published by the
//! relay; and a later event of a claimed key waits for it, so one key's events keep their
//! order. MariaDB and SQLite.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use goodsmall_platform::{
    configuration::DatabaseSettings,
    db::{Database, Migrations},
    events::{self, Bus, Event, EventHandler, InProcessBus, RelayHandle},
    metrics::Metrics,
};
use sqlx::{migrate::Migrator, Row};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

const TOPIC: &str = "test.outbox.v1";
const PATIENCE: Duration = Duration::from_secs(20);

async fn databases(hint: &str) -> Vec<(String, Database)> {
    let migrations = Migrations { mysql: Migrator::DEFAULT, sqlite: Migrator::DEFAULT };
    let mut databases = Vec::new();
    for url in [goodsmall_testkit::mysql_url(hint).await, goodsmall_testkit::sqlite_url(hint)] {
        let settings = DatabaseSettings { url: url.clone().into(), max_connections: 5, create_if_missing: true };
        let db = Database::connect("outbox", &settings, &migrations, &Metrics::new()).await.unwrap();
        events::install_schema(&db).await.unwrap();
        databases.push((url, db));
    }
    databases
}

/// What the bus delivered, in order; a delivery of an event whose kind is `gated` waits
/// for a permit of `gate` (a slow broker).
#[derive(Clone, Default)]
struct Recorder {
    seen: Arc<Mutex<Vec<Event>>>,
}

impl Recorder {
    fn bus(&self, gated: Option<(&'static str, Arc<Semaphore>)>) -> Bus {
        let bus = InProcessBus::default();
        let seen = self.seen.clone();
        let handler: EventHandler = Arc::new(move |event| {
            let seen = seen.clone();
            let gated = gated.clone();
            Box::pin(async move {
                if let Some((kind, gate)) = gated {
                    if event.kind == kind {
                        gate.acquire().await.unwrap().forget();
                    }
                }
                seen.lock().unwrap().push(event);
                Ok(())
            })
        });
        bus.subscribe("recorder", &[TOPIC], handler);
        Bus::InProcess(bus)
    }

    fn seen(&self) -> Vec<Event> {
        self.seen.lock().unwrap().clone()
    }

    /// How often each event id was delivered.
    fn deliveries(&self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for event in self.seen() {
            *counts.entry(event.id).or_default() += 1;
        }
        counts
    }

    async fn wait_for(&self, what: &str, done: impl Fn(&[Event]) -> bool) {
        let started = Instant::now();
        while !done(&self.seen()) {
            assert!(started.elapsed() < PATIENCE, "{what}: not after {PATIENCE:?}; seen {:?}", self.seen());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn event(kind: &str, key: &str) -> Event {
    Event::new(TOPIC, kind, key, serde_json::json!({}))
}

async fn unpublished(db: &Database) -> i64 {
    sqlx::query("SELECT COUNT(*) FROM outbox_events WHERE published_at IS NULL")
        .fetch_one(db.pool())
        .await
        .unwrap()
        .try_get::<i64, _>(0)
        .unwrap()
}

/// Appends `events` and commits them, claimed (published directly) or not.
async fn commit(db: &Database, relay: &RelayHandle, events: Vec<Event>, claimed: bool) {
    let mut tx = db.pool().begin().await.unwrap();
    let appended = events::append_all(&mut tx, events).await.unwrap();
    if claimed {
        let claim = relay.claim(appended);
        tx.commit().await.unwrap();
        claim.publish();
    } else {
        tx.commit().await.unwrap();
        relay.wake();
    }
}

/// A relay (and its direct publisher) running on a database, publishing to a recorder;
/// when gated, each delivery of a "created" event waits for a permit of `gate`.
struct Running {
    recorder: Recorder,
    gate: Arc<Semaphore>,
    relay: RelayHandle,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    fn start(db: &Database, gated: bool) -> Self {
        let recorder = Recorder::default();
        let gate = Arc::new(Semaphore::new(0));
        let shutdown = CancellationToken::new();
        let relay = RelayHandle::default();
        let bus = recorder.bus(gated.then(|| ("created", gate.clone())));
        let task = events::run_relay(db.clone(), bus, relay.clone(), shutdown.clone());
        Self { recorder, gate, relay, shutdown, task }
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap();
    }
}

/// Waits until every outbox row is marked published.
async fn all_marked(db: &Database, url: &str) {
    let started = Instant::now();
    while unpublished(db).await > 0 {
        assert!(started.elapsed() < PATIENCE, "{url}: rows left unmarked");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claimed_events_are_published_once_each_and_none_of_a_rolled_back_transaction() {
    for (url, db) in databases("outbox_direct").await {
        let running = Running::start(&db, false);
        let (recorder, relay) = (&running.recorder, &running.relay);

        // Committed batches, published from memory while the relay polls the outbox.
        let mut sent = Vec::new();
        for round in 0..40 {
            let batch: Vec<Event> = (0..25).map(|n| event("created", &format!("k{round}-{n}"))).collect();
            sent.extend(batch.iter().map(|e| e.id.clone()));
            commit(&db, relay, batch, true).await;
        }
        // Rolled back: the claim goes back to the relay, which finds no row.
        let lost = event("created", "rolled-back");
        {
            let mut tx = db.pool().begin().await.unwrap();
            let appended = events::append(&mut tx, lost.clone()).await.unwrap();
            let _claim = relay.claim(appended);
            tx.rollback().await.unwrap();
        }
        // Committed, but the committer never heard back (its claim is dropped): the
        // relay publishes it from its row.
        let orphaned = event("created", "commit-unanswered");
        {
            let mut tx = db.pool().begin().await.unwrap();
            let appended = events::append(&mut tx, orphaned.clone()).await.unwrap();
            let claim = relay.claim(appended);
            tx.commit().await.unwrap();
            drop(claim);
        }
        sent.push(orphaned.id.clone());

        recorder.wait_for(&format!("{url}: every committed event"), |seen| seen.len() >= sent.len()).await;
        all_marked(&db, &url).await;
        // A few relay polls later, still once each.
        tokio::time::sleep(Duration::from_millis(700)).await;
        let deliveries = recorder.deliveries();
        assert_eq!(deliveries.len(), sent.len(), "{url}: every committed event, nothing else");
        for id in &sent {
            assert_eq!(deliveries.get(id), Some(&1), "{url}: {id} once");
        }
        assert!(!deliveries.contains_key(&lost.id), "{url}: nothing of a rolled-back transaction");
        // The relay read the outbox, but published only the orphaned row from it.
        assert_eq!(db.metrics().db_queries("outbox", "outbox.mark_published"), 1, "{url}");

        running.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_event_of_a_claimed_key_waits_for_it_and_a_failed_claim_goes_to_the_relay() {
    for (url, db) in databases("outbox_order").await {
        let running = Running::start(&db, true);
        let (recorder, relay, gate) = (&running.recorder, &running.relay, &running.gate);

        // k1's creation is claimed and its publication hangs (a slow broker) ...
        commit(&db, relay, vec![event("created", "k1")], true).await;
        // ... while its cancellation and another key's event commit through the relay.
        commit(&db, relay, vec![event("canceled", "k1"), event("other", "k2")], false).await;
        recorder.wait_for(&format!("{url}: k2's event"), |seen| seen.iter().any(|e| e.key == "k2")).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(
            recorder.seen().iter().all(|e| e.key != "k1"),
            "{url}: k1's cancellation waits for its creation: {:?}",
            recorder.seen()
        );

        gate.add_permits(1);
        recorder
            .wait_for(&format!("{url}: k1's events"), |seen| seen.iter().filter(|e| e.key == "k1").count() == 2)
            .await;
        let k1: Vec<String> = recorder.seen().into_iter().filter(|e| e.key == "k1").map(|e| e.kind).collect();
        assert_eq!(k1, ["created", "canceled"], "{url}: in their order");

        running.stop().await;
    }
}

/// Appends `events` as rows of several events ([`events::append_together`]) and commits
/// them; the claim is published or, when `unanswered`, dropped after the commit.
async fn commit_together(db: &Database, relay: &RelayHandle, events: Vec<Event>, unanswered: bool) {
    let mut tx = db.pool().begin().await.unwrap();
    let appended = events::append_together(&mut tx, events).await.unwrap();
    assert_eq!(appended.rows(), 1, "a few small events fit in one row");
    let claim = relay.claim(appended);
    tx.commit().await.unwrap();
    if unanswered {
        drop(claim);
    } else {
        claim.publish();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_of_events_made_together_is_published_once_and_holds_back_each_of_its_keys() {
    for (url, db) in databases("outbox_together").await {
        let running = Running::start(&db, true);
        let (recorder, relay, gate) = (&running.recorder, &running.relay, &running.gate);

        // a, b and c are created in one row, claimed, and their publication hangs ...
        commit_together(&db, relay, ["a", "b", "c"].map(|k| event("created", k)).to_vec(), false).await;
        // ... while b's cancellation and d's event commit through the relay: b's waits
        // for the whole row, d's does not.
        commit(&db, relay, vec![event("canceled", "b"), event("other", "d")], false).await;
        recorder.wait_for(&format!("{url}: d's event"), |seen| seen.iter().any(|e| e.key == "d")).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(
            recorder.seen().iter().all(|e| e.kind != "canceled"),
            "{url}: b's cancellation waits for the row of its creation: {:?}",
            recorder.seen()
        );
        // e and f are committed in one row whose committer never heard back: the relay
        // publishes the row's events from it.
        commit_together(&db, relay, ["e", "f"].map(|k| event("created", k)).to_vec(), true).await;

        gate.add_permits(5);
        recorder.wait_for(&format!("{url}: every event"), |seen| seen.len() == 7).await;
        let b: Vec<String> = recorder.seen().into_iter().filter(|e| e.key == "b").map(|e| e.kind).collect();
        assert_eq!(b, ["created", "canceled"], "{url}: b's events in their order");
        all_marked(&db, &url).await;
        tokio::time::sleep(Duration::from_millis(700)).await;
        let deliveries = recorder.deliveries();
        assert_eq!(deliveries.len(), 7, "{url}: {deliveries:?}");
        assert!(deliveries.values().all(|n| *n == 1), "{url}: each event once: {deliveries:?}");

        running.stop().await;
    }
}
