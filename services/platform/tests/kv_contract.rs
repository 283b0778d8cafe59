//! The in-process store must behave like Redis for everything the services use, or
//! the one-process default would pass tests the deployment fails. Each contract runs
//! against both.

use std::time::Duration;

use goodsmall_platform::kv::Kv;
use goodsmall_testkit::eventually;

async fn stores() -> Vec<Kv> {
    let redis = Kv::redis(&goodsmall_testkit::redis_url().await).await.expect("the test Redis answers");
    vec![Kv::memory(), redis]
}

/// Time for a key with a TTL of under a second to go, on a busy machine.
const EXPIRY: Duration = Duration::from_secs(5);

/// Waits until `key` has expired: gone from both `get` and `ttl`.
async fn expired(kv: &Kv, key: &str) {
    let what = format!("{}: {key} to expire", kv.backend_name());
    eventually(&what, EXPIRY, async || {
        (kv.get(key).await.unwrap().is_none() && kv.ttl(key).await.unwrap().is_none()).then_some(())
    })
    .await;
}

/// Waits until `key`'s TTL has run down to `left` or less; the key must still be there.
async fn ttl_down_to(kv: &Kv, key: &str, left: Duration) {
    let what = format!("{}: {key}'s TTL to run down to {left:?}", kv.backend_name());
    let ttl = eventually(&what, EXPIRY, async || match kv.ttl(key).await.unwrap() {
        Some(ttl) if ttl > left => None,
        ttl => Some(ttl),
    })
    .await;
    assert!(ttl.is_some(), "{what}: it expired first");
}

#[tokio::test]
async fn get_set_del_and_expiry() {
    for kv in stores().await {
        let name = kv.backend_name();
        assert_eq!(kv.get("a").await.unwrap(), None, "{name}");
        kv.set("a", "1", Duration::from_millis(300)).await.unwrap();
        assert_eq!(kv.get("a").await.unwrap().as_deref(), Some("1"), "{name}");
        let ttl = kv.ttl("a").await.unwrap().expect("a TTL");
        assert!(ttl <= Duration::from_millis(300) && ttl > Duration::from_millis(100), "{name}: {ttl:?}");
        expired(&kv, "a").await;
        kv.set("b", "2", Duration::from_secs(60)).await.unwrap();
        kv.set("c", "3", Duration::from_secs(60)).await.unwrap();
        kv.del(&["b", "c", "never-there"]).await.unwrap();
        assert_eq!(kv.get("b").await.unwrap(), None, "{name}");
        assert_eq!(kv.get("c").await.unwrap(), None, "{name}");
        kv.ping().await.unwrap();
    }
}

#[tokio::test]
async fn set_nx_sets_only_when_absent() {
    for kv in stores().await {
        let name = kv.backend_name();
        assert!(kv.set_nx("k", "first", Duration::from_millis(200)).await.unwrap(), "{name}");
        assert!(!kv.set_nx("k", "second", Duration::from_secs(60)).await.unwrap(), "{name}");
        assert_eq!(kv.get("k").await.unwrap().as_deref(), Some("first"), "{name}");
        expired(&kv, "k").await;
        assert!(kv.set_nx("k", "third", Duration::from_secs(60)).await.unwrap(), "{name}: free again after expiry");
    }
}

#[tokio::test]
async fn incr_counts_within_a_window_fixed_by_the_first_event() {
    for kv in stores().await {
        let name = kv.backend_name();
        assert_eq!(kv.incr("n", Duration::from_millis(400)).await.unwrap(), 1, "{name}");
        ttl_down_to(&kv, "n", Duration::from_millis(200)).await;
        assert_eq!(kv.incr("n", Duration::from_secs(60)).await.unwrap(), 2, "{name}");
        let ttl = kv.ttl("n").await.unwrap().expect("a TTL");
        assert!(ttl <= Duration::from_millis(200), "{name}: later increments keep the first expiry, got {ttl:?}");
        expired(&kv, "n").await;
        assert_eq!(kv.incr("n", Duration::from_secs(60)).await.unwrap(), 1, "{name}: a new window");
    }
}

#[tokio::test]
async fn concurrent_set_nx_has_one_winner() {
    for kv in stores().await {
        let tasks: Vec<_> = (0..50)
            .map(|i| {
                let kv = kv.clone();
                tokio::spawn(async move { kv.set_nx("lock", &i.to_string(), Duration::from_secs(60)).await.unwrap() })
            })
            .collect();
        let mut winners = 0;
        for t in tasks {
            winners += usize::from(t.await.unwrap());
        }
        assert_eq!(winners, 1, "{}", kv.backend_name());
    }
}

#[tokio::test]
async fn an_unreachable_redis_fails_fast_with_an_error() {
    let started = std::time::Instant::now();
    assert!(Kv::redis("redis://127.0.0.1:1/0").await.is_err());
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn incr_extending_is_forgotten_only_after_a_quiet_ttl() {
    for kv in stores().await {
        let name = kv.backend_name();
        let window = Duration::from_millis(400);
        let started = std::time::Instant::now();
        assert_eq!(kv.incr_extending("s", window).await.unwrap(), 1, "{name}");
        ttl_down_to(&kv, "s", Duration::from_millis(150)).await;
        assert_eq!(kv.incr_extending("s", window).await.unwrap(), 2, "{name}");
        let ttl = kv.ttl("s").await.unwrap().expect("a TTL");
        assert!(ttl > Duration::from_millis(250), "{name}: each increment restarts the expiry, got {ttl:?}");
        ttl_down_to(&kv, "s", Duration::from_millis(150)).await;
        assert!(started.elapsed() > window, "{name}: past the first increment's window");
        assert_eq!(
            kv.incr_extending("s", window).await.unwrap(),
            3,
            "{name}: still remembered after the first increment's window"
        );
        expired(&kv, "s").await;
        assert_eq!(kv.incr_extending("s", window).await.unwrap(), 1, "{name}: forgotten after a quiet TTL");
    }
}

#[tokio::test]
async fn get_many_answers_each_key_in_order() {
    for kv in stores().await {
        let name = kv.backend_name();
        kv.set("m1", "one", Duration::from_secs(60)).await.unwrap();
        assert_eq!(kv.get_many(&["m1", "m2"]).await.unwrap(), vec![Some("one".to_owned()), None], "{name}");
        assert_eq!(kv.get_many(&["m2"]).await.unwrap(), vec![None], "{name}: one key is still a list");
    }
}

/// The revocations' reload: all or nothing, and nothing once the guard is gone (the
/// store lost its keys while the writer read what to write).
#[tokio::test]
async fn set_all_if_writes_everything_only_while_the_guard_stands() {
    for kv in stores().await {
        let name = kv.backend_name();
        let entries = vec![
            ("g1".to_owned(), "a".to_owned(), Some(Duration::from_millis(300))),
            ("g2".to_owned(), "b".to_owned(), None),
        ];
        assert!(!kv.set_all_if("guard", "t1", &entries).await.unwrap(), "{name}: no guard");
        assert_eq!(kv.get_many(&["g1", "g2"]).await.unwrap(), vec![None, None], "{name}: nothing written");
        kv.set("guard", "t2", Duration::from_secs(60)).await.unwrap();
        assert!(!kv.set_all_if("guard", "t1", &entries).await.unwrap(), "{name}: another writer's guard");
        kv.set("guard", "t1", Duration::from_secs(60)).await.unwrap();
        assert!(kv.set_all_if("guard", "t1", &entries).await.unwrap(), "{name}");
        assert_eq!(
            kv.get_many(&["g1", "g2", "guard"]).await.unwrap(),
            vec![Some("a".to_owned()), Some("b".to_owned()), None],
            "{name}: written, guard gone"
        );
        assert!(kv.ttl("g1").await.unwrap().is_some_and(|t| t <= Duration::from_millis(300)), "{name}");
        assert_eq!(kv.ttl("g2").await.unwrap(), None, "{name}: never expires");
    }
}

#[tokio::test]
async fn the_store_id_is_stable_and_its_own() {
    let [memory, redis]: [Kv; 2] = stores().await.try_into().ok().unwrap();
    for kv in [&memory, &redis] {
        assert_eq!(kv.store_id().await.unwrap(), kv.store_id().await.unwrap(), "{}", kv.backend_name());
    }
    assert_ne!(
        memory.store_id().await.unwrap(),
        Kv::memory().store_id().await.unwrap(),
        "each in-process store is another store"
    );
    assert_eq!(redis.store_id().await.unwrap().len(), 40, "Redis's run_id");
    assert!(redis.may_lose_keys() && !memory.may_lose_keys());
}

/// A counter key that holds something else is an error in both stores (Redis answers
/// `INCR` with "value is not an integer"), never counted on from 0; the value stays.
#[tokio::test]
async fn a_counter_that_is_not_a_number_is_an_error() {
    for kv in stores().await {
        let name = kv.backend_name();
        kv.set("not-a-counter", "many", Duration::from_secs(60)).await.unwrap();
        let error = kv.incr("not-a-counter", Duration::from_secs(60)).await.expect_err(name);
        if name == "memory" {
            assert!(
                matches!(&error, goodsmall_platform::kv::KvError::NotACounter { key, value, .. }
                    if key == "not-a-counter" && value == "many"),
                "{error}"
            );
        }
        assert!(kv.incr_extending("not-a-counter", Duration::from_secs(60)).await.is_err(), "{name}");
        assert_eq!(kv.get("not-a-counter").await.unwrap().as_deref(), Some("many"), "{name}: unchanged");
    }
}
