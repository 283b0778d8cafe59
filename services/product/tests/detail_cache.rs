//! The detail cache under a stampede: many concurrent requests for one cold product
//! cost one database query, on the in-process store and on real Redis.

use goodsmall_platform::{configuration::DatabaseSettings, db::Database, kv::Kv, metrics::Metrics};
use goodsmall_product::{
    catalogue::{Catalogue, NewProduct, Product},
    configuration::CacheSettings,
    detail_cache::{detail_key, DetailCache},
    domain::{DecimalInput, Description, Price, ProductName, ProductStatus, StockQuantity},
    startup::migrations,
};

async fn catalogue(dir: &std::path::Path) -> Catalogue {
    let db = Database::connect("product", &DatabaseSettings::sqlite(&dir.join("p.db")), &migrations(), &Metrics::new())
        .await
        .unwrap();
    Catalogue::new(db)
}

fn hoodie() -> NewProduct {
    NewProduct {
        merchant_id: 1,
        name: ProductName::parse("Hoodie").unwrap(),
        description: Description::parse("warm").unwrap(),
        price: Price::parse(&DecimalInput::Text("10.00".into())).unwrap(),
        quantity: StockQuantity::parse(5).unwrap(),
        status: ProductStatus::OnSale,
        opens_at: None,
    }
}

async fn stampede(kv: Kv) {
    let dir = std::env::temp_dir().join(format!("goodsmall-cache-{}-{}", std::process::id(), kv.backend_name()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let catalogue = catalogue(&dir).await;
    let product = catalogue.create(hoodie()).await.unwrap();
    let cache = DetailCache::new(kv.clone(), catalogue.clone(), CacheSettings::default());
    let before = catalogue.database().query_count("product.find_by_id");

    let readers: Vec<_> = (0..64)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.get(product.id).await.unwrap() })
        })
        .collect();
    for reader in readers {
        assert_eq!(reader.await.unwrap().as_ref(), Some(&product));
    }
    let queries = catalogue.database().query_count("product.find_by_id") - before;
    assert_eq!(queries, 1, "{}: 64 concurrent misses must cost one query", kv.backend_name());

    // Unknown ids are remembered as missing, so probing them is cheap too.
    for _ in 0..10 {
        assert_eq!(cache.get(987_654).await.unwrap(), None);
    }
    assert_eq!(catalogue.database().query_count("product.find_by_id") - before, 2, "{}", kv.backend_name());
    let ttl = kv.ttl(&detail_key(987_654)).await.unwrap().expect("the missing marker expires");
    assert!(ttl.as_secs() <= CacheSettings::default().missing_ttl_secs);
    let ttl = kv.ttl(&detail_key(product.id)).await.unwrap().expect("entries expire");
    let settings = CacheSettings::default();
    assert!(ttl.as_secs() <= settings.ttl_secs + settings.jitter_secs && ttl.as_secs() >= settings.ttl_secs - 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stampede_on_a_cold_product_costs_one_query_in_process() {
    stampede(Kv::memory()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stampede_on_a_cold_product_costs_one_query_on_redis() {
    stampede(Kv::redis(&goodsmall_testkit::redis_url().await).await.unwrap()).await;
}

/// How often `op` succeeded on a `Kv` carrying these metrics.
fn kv_ops(metrics: &Metrics, op: &str) -> u64 {
    let series = format!(r#"goodsmall_kv_operations_total{{op="{op}",outcome="ok"}} "#);
    metrics.render().lines().find_map(|l| l.strip_prefix(&series)).map_or(0, |v| v.parse().unwrap())
}

/// A reader misses, the writer then stores a fresher value, and only then does the
/// reader's fill (of the row it read) land: the fill must not replace the writer's value.
/// The order is forced, not hoped for: the catalogue has one database connection, held
/// here while the reader looks up and the writer stores, so the reader's row read and
/// fill both come after the store.
async fn reader_fill_after_writer_store(kv: Kv) {
    let backend = kv.backend_name();
    let dir = std::env::temp_dir().join(format!("goodsmall-cache-race-{}-{backend}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let one_connection = DatabaseSettings { max_connections: 1, ..DatabaseSettings::sqlite(&dir.join("p.db")) };
    let db = Database::connect("product", &one_connection, &migrations(), &Metrics::new()).await.unwrap();
    let catalogue = Catalogue::new(db);
    let stored = catalogue.create(hoodie()).await.unwrap();
    // The reader's store handle counts its own operations; both share the entries.
    let reader_ops = Metrics::new();
    let reader =
        DetailCache::new(kv.clone().with_metrics(reader_ops.clone()), catalogue.clone(), CacheSettings::default());
    let writer = DetailCache::new(kv.clone(), catalogue.clone(), CacheSettings::default());

    let held = catalogue.database().pool().acquire().await.unwrap();
    let read = tokio::spawn(async move { reader.get(stored.id).await.unwrap() });
    // Both of its lookups (before and inside the single flight) missed: it now waits
    // for the connection to read the row.
    let started = std::time::Instant::now();
    while kv_ops(&reader_ops, "get") < 2 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{backend}: the reader never looked the product up"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let mut fresher = stored.clone();
    fresher.name = "Hoodie v2".into();
    writer.store(&fresher).await;
    drop(held);

    let served = read.await.unwrap().expect("the product exists");
    // It served the row it read, so it did miss and fill after the store.
    assert_eq!(served.name, "Hoodie", "{backend}: the reader went to the database");
    let cached: Option<Product> =
        serde_json::from_str(&kv.get(&detail_key(stored.id)).await.unwrap().expect("an entry")).unwrap();
    assert_eq!(
        cached.expect("the product").name,
        "Hoodie v2",
        "{backend}: the reader's fill overwrote the writer's value"
    );
    assert_eq!(kv_ops(&reader_ops, "set_nx"), 1, "{backend}: the reader tried its fill, after the writer stored");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_value_is_never_overwritten_by_a_reader_fill_in_process() {
    reader_fill_after_writer_store(Kv::memory()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_value_is_never_overwritten_by_a_reader_fill_on_redis() {
    reader_fill_after_writer_store(Kv::redis(&goodsmall_testkit::redis_url().await).await.unwrap()).await;
}
