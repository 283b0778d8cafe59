//! The Kafka bus against a real broker (the Apache Kafka broker `scripts/test.sh` starts).
//! Every test uses topics and consumer groups of its own (`unique_name`), so tests run
//! in parallel on one broker.

use std::{
    collections::{BTreeMap, HashSet},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use goodsmall_platform::events::{BatchHandler, Bus, Event, EventHandler, KafkaBus, KafkaSettings};
use goodsmall_testkit::{eventually, kafka_brokers, unique_name, wait_until_consumed};
use tokio_util::sync::CancellationToken;

const KIND: &str = "test.numbered";
/// Generous: joining a consumer group takes a few seconds on a busy 2-core machine.
const PATIENCE: Duration = Duration::from_secs(60);

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "info,librdkafka=warn,rdkafka=warn".into()))
        .with_test_writer()
        .try_init();
}

async fn connect(shutdown: CancellationToken) -> KafkaBus {
    init_tracing();
    let mut settings = KafkaSettings::new(kafka_brokers().await);
    settings.debug = std::env::var("KAFKA_DEBUG").ok();
    KafkaBus::connect(&settings, shutdown).await.expect("the test Kafka broker answers")
}

fn numbered(topic: &str, key: &str, n: u32) -> Event {
    Event::new(topic, KIND, key, serde_json::json!({ "n": n }))
}

fn n_of(event: &Event) -> u32 {
    event.decode::<serde_json::Value>().unwrap()["n"].as_u64().expect("a numbered event") as u32
}

/// Every event a handler was given, in the order it was given them.
#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<Event>>>);

impl Received {
    fn handler(&self) -> EventHandler {
        let seen = self.0.clone();
        Arc::new(move |event| {
            seen.lock().unwrap().push(event);
            Box::pin(async { Ok(()) })
        })
    }

    fn all(&self) -> Vec<Event> {
        self.0.lock().unwrap().clone()
    }

    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

#[tokio::test]
async fn every_event_arrives_and_each_key_keeps_its_order() {
    let bus = connect(CancellationToken::new()).await;
    // Topic and group in one namespace, so `wait_until_consumed` finds the group.
    let namespace = unique_name("bus-order");
    let topic = format!("{namespace}.events");
    bus.ensure_topics(&[&topic], 3).await.unwrap();
    bus.ensure_topics(&[&topic], 3).await.expect("an existing topic is fine");

    let keys = ["order-1", "order-2", "order-3", "order-4", "order-5"];
    let per_key = 30;
    // Keys interleaved, sent in three batches, as the outbox relay would.
    let mut events = Vec::new();
    for n in 0..per_key {
        for key in keys {
            events.push(numbered(&topic, key, n));
        }
    }
    let brokers = bus.brokers().to_owned();
    let bus = Bus::Kafka(bus);
    for batch in events.chunks(50) {
        bus.publish(batch).await.unwrap();
    }

    let received = Received::default();
    bus.subscribe(&format!("{namespace}.group"), &[&topic], received.handler());
    eventually("all events", PATIENCE, async || (received.len() >= events.len()).then_some(())).await;
    // Nothing more may come: once the group has committed to the end, no event is redelivered.
    wait_until_consumed(&brokers, &namespace, PATIENCE).await;

    let got = received.all();
    assert_eq!(got.len(), events.len(), "each event exactly once in a clean run");
    let ids: HashSet<&str> = got.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids.len(), events.len(), "no event twice");
    for event in &got {
        assert!(events.contains(event), "received an event that was not sent, or changed on the way: {event:?}");
    }
    let mut by_key: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
    for event in &got {
        by_key.entry(event.key.as_str()).or_default().push(n_of(event));
    }
    for key in keys {
        assert_eq!(by_key[key], (0..per_key).collect::<Vec<_>>(), "order of key {key}");
    }
}

#[tokio::test]
async fn a_failing_event_is_retried_and_blocks_its_partition_until_it_succeeds() {
    let bus = connect(CancellationToken::new()).await;
    let topic = unique_name("bus-retry");
    bus.ensure_topics(&[&topic], 1).await.unwrap();
    // One partition: all these events are one ordered stream, whatever their keys.
    let events: Vec<Event> = (0..10).map(|n| numbered(&topic, ["a", "b"][n as usize % 2], n)).collect();
    bus.publish(&events).await.unwrap();

    const FAILING: u32 = 4;
    const FAILURES: u32 = 3;
    let log: Arc<Mutex<Vec<(u32, bool)>>> = Arc::default();
    let handler: EventHandler = {
        let log = log.clone();
        Arc::new(move |event| {
            let n = n_of(&event);
            let mut log = log.lock().unwrap();
            let failures_so_far = log.iter().filter(|(m, ok)| *m == n && !ok).count() as u32;
            let ok = !(n == FAILING && failures_so_far < FAILURES);
            log.push((n, ok));
            Box::pin(async move {
                if ok {
                    Ok(())
                } else {
                    Err(anyhow::anyhow!("database away"))
                }
            })
        })
    };
    let started = Instant::now();
    bus.subscribe(&unique_name("bus-retry-group"), &[&topic], handler).unwrap();
    eventually("the last event", PATIENCE, async || {
        (log.lock().unwrap().iter().any(|(n, ok)| *n == 9 && *ok)).then_some(())
    })
    .await;

    let mut expected: Vec<(u32, bool)> = (0..FAILING).map(|n| (n, true)).collect();
    expected.extend((0..FAILURES).map(|_| (FAILING, false)));
    expected.extend((FAILING..10).map(|n| (n, true)));
    assert_eq!(*log.lock().unwrap(), expected, "retried in place; nothing after it handled before it succeeded");
    // The retries back off (100 + 200 + 400 ms) rather than spinning.
    assert!(started.elapsed() >= Duration::from_millis(700), "{:?}", started.elapsed());
}

#[tokio::test]
async fn a_batch_subscriber_gets_what_arrived_together_in_order_and_a_failed_batch_whole_again() {
    let bus = connect(CancellationToken::new()).await;
    let topic = unique_name("bus-batch");
    bus.ensure_topics(&[&topic], 1).await.unwrap();
    let events: Vec<Event> = (0..200).map(|n| numbered(&topic, &format!("k{}", n % 7), n)).collect();
    bus.publish(&events).await.unwrap();

    // Every call's events, and whether it succeeded; the first call holding event 150 fails.
    type Calls = Vec<(Vec<u32>, bool)>;
    let calls: Arc<Mutex<Calls>> = Arc::default();
    let handler: BatchHandler = {
        let calls = calls.clone();
        Arc::new(move |batch: Vec<Event>| {
            let numbers: Vec<u32> = batch.iter().map(n_of).collect();
            let mut calls = calls.lock().unwrap();
            let first_with_150 = numbers.contains(&150) && !calls.iter().any(|(n, _)| n.contains(&150));
            let ok = !first_with_150;
            calls.push((numbers, ok));
            Box::pin(async move {
                if ok {
                    Ok(())
                } else {
                    Err(anyhow::anyhow!("database away"))
                }
            })
        })
    };
    bus.subscribe_batches(&unique_name("bus-batch-group"), &[&topic], handler).unwrap();
    eventually("every event handled", PATIENCE, async || {
        (calls.lock().unwrap().iter().any(|(n, ok)| *ok && n.contains(&199))).then_some(())
    })
    .await;

    let calls = calls.lock().unwrap().clone();
    let handled: Vec<u32> = calls.iter().filter(|(_, ok)| *ok).flat_map(|(n, _)| n.clone()).collect();
    assert_eq!(handled, (0..200).collect::<Vec<_>>(), "each event once, in order, across the successful batches");
    assert!(calls.iter().any(|(n, _)| n.len() > 1), "events that arrived together came as one batch: {calls:?}");
    let failed = calls.iter().position(|(_, ok)| !ok).expect("one call failed");
    assert_eq!(calls[failed + 1].0, calls[failed].0, "the failed batch came again whole");
}

#[tokio::test]
async fn a_group_resumes_from_its_committed_offsets_and_a_new_group_replays_everything() {
    let namespace = unique_name("bus-commit");
    let (topic, group) = (format!("{namespace}.events"), format!("{namespace}.group"));
    let events: Vec<Event> = (0..10).map(|n| numbered(&topic, &format!("k{}", n % 3), n)).collect();

    // First consumer: handles 0..=5, then fails on 6 until it is shut down.
    let first_shutdown = CancellationToken::new();
    let first_bus = connect(first_shutdown.clone()).await;
    first_bus.ensure_topics(&[&topic], 1).await.unwrap();
    first_bus.publish(&events).await.unwrap();
    let first_seen: Arc<Mutex<Vec<(u32, bool)>>> = Arc::default();
    let handler: EventHandler = {
        let seen = first_seen.clone();
        Arc::new(move |event| {
            let n = n_of(&event);
            seen.lock().unwrap().push((n, n < 6));
            Box::pin(async move {
                if n < 6 {
                    Ok(())
                } else {
                    Err(anyhow::anyhow!("crashing before {n}"))
                }
            })
        })
    };
    let first = first_bus.subscribe(&group, &[&topic], handler).unwrap();
    eventually("the first consumer to reach event 6", PATIENCE, async || {
        (first_seen.lock().unwrap().iter().any(|(n, _)| *n == 6)).then_some(())
    })
    .await;
    first_shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), first).await.expect("the consumer stops on shutdown").unwrap();
    let handled_first: Vec<u32> = first_seen.lock().unwrap().iter().filter(|(_, ok)| *ok).map(|(n, _)| *n).collect();
    assert_eq!(handled_first, (0..6).collect::<Vec<_>>());
    assert!(first_seen.lock().unwrap().iter().all(|(n, _)| *n <= 6), "nothing after the failing event");

    // Same group again: continues where the first stopped (6 was never committed).
    let bus = connect(CancellationToken::new()).await;
    let again = Received::default();
    bus.subscribe(&group, &[&topic], again.handler()).unwrap();
    eventually("the rest of the events", PATIENCE, async || (again.all().iter().any(|e| n_of(e) == 9)).then_some(()))
        .await;
    // Committed to the end: no event of the group's can come again.
    wait_until_consumed(bus.brokers(), &namespace, PATIENCE).await;
    let resumed: Vec<u32> = again.all().iter().map(n_of).collect();
    // At-least-once: the last handled event (5) may come again, nothing earlier may.
    let expected_tail: Vec<u32> = (6..10).collect();
    assert!(
        resumed == expected_tail || resumed == [5, 6, 7, 8, 9],
        "the group re-read more than its last uncommitted event: {resumed:?}"
    );

    // A new group starts at offset 0 and sees everything.
    let replay = Received::default();
    bus.subscribe(&unique_name("bus-replay-group"), &[&topic], replay.handler()).unwrap();
    eventually("the replay", PATIENCE, async || (replay.len() >= events.len()).then_some(())).await;
    assert_eq!(replay.all(), events, "a new group replays the whole topic in order");
}

#[tokio::test]
async fn a_message_that_is_not_an_event_is_skipped_not_retried_forever() {
    use rdkafka::producer::{FutureProducer, FutureRecord};

    let bus = connect(CancellationToken::new()).await;
    let topic = unique_name("bus-poison");
    bus.ensure_topics(&[&topic], 1).await.unwrap();
    let raw: FutureProducer = rdkafka::ClientConfig::new().set("bootstrap.servers", bus.brokers()).create().unwrap();
    raw.send(FutureRecord::to(&topic).key("x").payload("not json at all"), Duration::from_secs(10)).await.unwrap();
    raw.send(FutureRecord::to(&topic).key("x").payload(r#"{"id":"only-an-id"}"#), Duration::from_secs(10))
        .await
        .unwrap();
    let good = numbered(&topic, "x", 1);
    bus.publish(std::slice::from_ref(&good)).await.unwrap();

    let received = Received::default();
    bus.subscribe(&unique_name("bus-poison-group"), &[&topic], received.handler()).unwrap();
    eventually("the good event", PATIENCE, async || (received.len() >= 1).then_some(())).await;
    assert_eq!(received.all(), vec![good]);
}

#[tokio::test]
async fn connecting_to_a_dead_address_fails_fast_naming_it() {
    init_tracing();
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    }; // closed again: nothing listens there
    let address = format!("127.0.0.1:{port}");
    let started = Instant::now();
    let result = KafkaBus::connect(&KafkaSettings::new(&address), CancellationToken::new()).await;
    let elapsed = started.elapsed();
    let error = format!("{:#}", result.err().expect("no broker there"));
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
    assert!(error.contains(&address), "the error names the address: {error}");
}

#[test]
fn kafka_settings_come_from_the_environment_like_every_other_section() {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Settings {
        kafka: KafkaSettings,
    }
    let env = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
    let s: Settings = goodsmall_platform::configuration::load_from(
        None,
        env(&[("GOODSMALL_KAFKA__BROKERS", "k1:9092,k2:9092"), ("GOODSMALL_KAFKA__CLIENT_ID", "order")]),
    )
    .unwrap();
    assert_eq!(s.kafka.brokers, "k1:9092,k2:9092");
    assert_eq!(s.kafka.client_id.as_deref(), Some("order"));
    s.kafka.validate("kafka").unwrap();

    let misspelt = goodsmall_platform::configuration::load_from::<Settings>(
        None,
        env(&[("GOODSMALL_KAFKA__BROKERS", "k1:9092"), ("GOODSMALL_KAFKA__BROKER_LIST", "x")]),
    );
    assert!(misspelt.is_err(), "an unknown Kafka setting is an error");
}
