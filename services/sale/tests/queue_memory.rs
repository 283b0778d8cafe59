//! What a waiting room costs the stock store: a queue of 1,000,000 shoppers, joined
//! through the real script, must fit in 200 MB of Redis. Prints the bytes per shopper.
//! It runs on a Redis of its own: a million joins and the removal of their queue keep a
//! Redis busy for seconds, which the run's shared Redis must not be (other tests' calls
//! there have a one-second answer deadline).

mod common;

use common::{sale, OPENS};
use goodsmall_sale::{keys, queue::QueueTerms, SaleDefinition, StockEngine};

const SHOPPERS: i64 = 1_000_000;
const BUDGET_BYTES: i64 = 200 * 1024 * 1024;

async fn used_memory(conn: &mut redis::aio::ConnectionManager) -> i64 {
    let info: String = redis::cmd("INFO").arg("memory").query_async(conn).await.unwrap();
    let line = info.lines().find_map(|l| l.strip_prefix("used_memory:")).expect("INFO memory has used_memory");
    line.trim().parse().unwrap()
}

#[tokio::test]
async fn a_million_waiting_shoppers_fit_in_200_mb() {
    let redis = goodsmall_testkit::RedisServer::start().await;
    let client = redis::Client::open(redis.url()).expect("a Redis URL");
    let mut conn = redis::aio::ConnectionManager::new(client).await.expect("the private Redis answers");
    let engine = StockEngine::redis(conn.clone());
    let terms = QueueTerms { pre_queue_ms: 3_600_000, admit_per_second: 100, turn_ttl_ms: 120_000 };
    let def = SaleDefinition { queue: Some(terms), ..sale(9_001, 1_000, 1) };
    engine.remove_sale(def.sale_id).await.unwrap();
    engine.load_sale(&def).await.unwrap();
    let before = used_memory(&mut conn).await;
    // The same script the order service runs, pipelined (a join per shopper, at staggered
    // times within the pre-queue).
    let script = redis::Script::new(include_str!("../src/scripts/queue.lua"));
    let _: () = script.prepare_invoke().load_async(&mut conn).await.map(|_: String| ()).unwrap();
    let [sale_key, queue, turns, pending] =
        [keys::sale(9_001), keys::queue(9_001), keys::turns(9_001), keys::pending_turns(9_001)];
    for batch in (1..=SHOPPERS).collect::<Vec<_>>().chunks(20_000) {
        let mut pipe = redis::pipe();
        for &user in batch {
            let place = goodsmall_sale::queue::draw_place_key();
            pipe.cmd("EVALSHA").arg(script.get_hash()).arg(4).arg(&sale_key).arg(&queue).arg(&turns).arg(&pending);
            pipe.arg("JOIN").arg(user).arg(OPENS - 1_000_000 + user).arg(place).ignore();
        }
        let () = pipe.query_async(&mut conn).await.unwrap();
    }
    let counts = engine.queue_counts(goodsmall_sale::SaleId(9_001), OPENS - 1).await.unwrap().unwrap();
    assert_eq!(counts.joined, SHOPPERS as u64);
    let used = used_memory(&mut conn).await - before;
    let queue_bytes: i64 = redis::cmd("MEMORY").arg("USAGE").arg(&queue).query_async(&mut conn).await.unwrap();
    println!(
        "a queue of {SHOPPERS} shoppers: {queue_bytes} bytes (MEMORY USAGE), {used} bytes more used_memory, \
         {} bytes a shopper",
        used / SHOPPERS
    );
    assert!(used < BUDGET_BYTES && queue_bytes < BUDGET_BYTES, "{used} bytes used, {queue_bytes} in the queue");
    engine.remove_sale(9_001).await.unwrap();
}
