//! The detail cache under a stampede: many concurrent requests for one cold product
//! cost one database query, on the in-process store and on real Redis.

use goodsmall_platform::{configuration::DatabaseSettings, db::Database, kv::Kv, metrics::Metrics};
use goodsmall_product::{
    catalogue::{Catalogue, NewProduct},
    configuration::CacheSettings,
    detail_cache::{detail_key, DetailCache},
    domain::{DecimalInput, Description, Price, ProductName, ProductStatus, StockQuantity},
    startup::migrations,
};

async fn catalogue(dir: &std::path::Path) -> Catalogue {
    let db = Database::connect("product", &DatabaseSettings::sqlite(&dir.join("p.db")), &migrations(), &Metrics::new()).await.unwrap();
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

#[tokio::test]
async fn a_writer_value_is_never_overwritten_by_a_reader_fill() {
    let dir = std::env::temp_dir().join(format!("goodsmall-cache-race-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let catalogue = catalogue(&dir).await;
    let kv = Kv::memory();
    let cache = DetailCache::new(kv.clone(), catalogue.clone(), CacheSettings::default());
    let mut product = catalogue.create(hoodie()).await.unwrap();
    product.name = "Hoodie v2".into();
    // The writer stores the fresh value first; a reader arriving later must see it,
    // not refill from its own (possibly older) row.
    cache.store(&product).await;
    assert_eq!(cache.get(product.id).await.unwrap().unwrap().name, "Hoodie v2");
    let _ = std::fs::remove_dir_all(&dir);
}
