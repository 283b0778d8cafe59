//! The one-process shop's manifest store lives in the local operator's own database. An
//! earlier release kept it in the order database: its manifests move over once, with
//! their status, Events and halt, and are gone from the order database after.

use goodsmall_operator::{
    crd::FlashSaleSpec,
    local::store::{self, ManifestStore},
    reconcile::Note,
};
use goodsmall_platform::{
    configuration::DatabaseSettings,
    db::{Database, Migrations},
    metrics::Metrics,
};

async fn sqlite(name: &str, migrations: &Migrations) -> Database {
    let file = std::env::temp_dir().join(format!("{}.db", goodsmall_testkit::unique_name(name)));
    Database::connect("test", &DatabaseSettings::sqlite(&file), migrations, &Metrics::new())
        .await
        .expect("a SQLite database")
}

fn spec(stock: i64) -> FlashSaleSpec {
    serde_json::from_value(serde_json::json!({
        "productId": 7, "stock": stock, "price": "19.90", "perUserLimit": 2,
        "opensAt": "2026-12-24T10:00:00Z", "closesAt": "2026-12-24T11:00:00Z",
    }))
    .unwrap()
}

#[tokio::test]
async fn manifests_kept_in_the_order_database_move_to_the_operators_once() {
    let order_db = sqlite("order", &goodsmall_order::startup::migrations()).await;
    // What the earlier release wrote: the same table, in the order database.
    let earlier = ManifestStore::new(order_db.clone());
    earlier.apply("default/spring", 3, &spec(100)).await.unwrap().unwrap();
    earlier.apply("default/winter", 4, &spec(50)).await.unwrap().unwrap();
    earlier.apply("default/winter", 4, &spec(60)).await.unwrap().unwrap();
    let note = Note { reason: "Open".into(), message: "open now".into(), warning: false };
    earlier.save("default/spring", &Default::default(), &[note]).await.unwrap();
    earlier.set_halted("default/winter", Some("true")).await.unwrap();
    let before = earlier.list().await.unwrap();

    let manifests = ManifestStore::new(sqlite("operator", &store::migrations()).await);
    assert_eq!(manifests.carry_over(&order_db).await.unwrap(), 2);
    let after = manifests.list().await.unwrap();
    assert_eq!(
        serde_json::to_value(&after).unwrap(),
        serde_json::to_value(&before).unwrap(),
        "spec, generation, status, Events and halt all moved"
    );
    assert_eq!((after[1].generation, after[1].halted.as_deref()), (2, Some("true")));
    assert!(earlier.list().await.unwrap().is_empty(), "nothing left in the order database");

    // Once only: a manifest deleted after the move does not come back at the next start.
    manifests.remove("default/spring").await.unwrap();
    assert_eq!(manifests.carry_over(&order_db).await.unwrap(), 0);
    assert_eq!(manifests.list().await.unwrap().len(), 1);
}
