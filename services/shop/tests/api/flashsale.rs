//! A drop launched with a FlashSale manifest on the one-process default (the operator's
//! reconcile without a cluster): refused before it opens, bought once open, SoldOut with
//! the right counts, deleted once settled; bad manifests get the CRD's messages.

use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use goodsmall_operator::local::cli::{Command, FlashSaleCli};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::{
    catalogue::create_product,
    helpers::{assert_problem, assert_status, TestShop},
};

fn manifest(name: &str, product_id: i64, stock: i64, opens_in: Duration) -> Value {
    let at = |d: chrono::Duration| (Utc::now() + d).to_rfc3339_opts(SecondsFormat::Millis, true);
    json!({
        "apiVersion": "goodsmall.io/v1alpha1",
        "kind": "FlashSale",
        "metadata": { "name": name },
        "spec": {
            "productId": product_id, "stock": stock, "price": "99.00", "perUserLimit": 1,
            "opensAt": at(chrono::Duration::from_std(opens_in).unwrap()), "closesAt": at(chrono::Duration::hours(1)),
            "warmup": { "lead": "10m", "orderReplicas": 4 }
        }
    })
}

/// Polls the FlashSale until `done` holds (15 s at most).
async fn flash_sale(shop: &TestShop, token: &str, name: &str, done: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..150 {
        last = assert_status(shop.get(&format!("/api/flashsales/{name}"), Some(token)).await, StatusCode::OK).await;
        if done(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("flashsale {name} did not reach the expected state; last: {last}")
}

fn condition<'a>(fs: &'a Value, type_: &str) -> &'a Value {
    fs["status"]["conditions"].as_array().and_then(|c| c.iter().find(|c| c["type"] == type_)).unwrap_or(&Value::Null)
}

async fn a_manifest_launches_a_drop_that_opens_on_time_and_sells_out(shop: TestShop) {
    let merchant = shop.merchant().await;
    let product = create_product(&shop, &merchant, "Tour Hoodie", 1000).await["id"].as_i64().unwrap();
    let put = |body: Value| shop.call(Method::PUT, "/api/flashsales/hoodie-drop", Some(&merchant), Some(body));
    let created =
        assert_status(put(manifest("hoodie-drop", product, 3, Duration::from_secs(4))).await, StatusCode::CREATED)
            .await;
    assert_eq!(created["message"], "flashsale.goodsmall.io/hoodie-drop created");

    let warming = flash_sale(&shop, &merchant, "hoodie-drop", |f| f["status"]["phase"] == "WarmingUp").await;
    let sale = warming["status"]["saleId"].as_i64().expect("the sale id shoppers buy from");
    assert_eq!(
        (warming["status"]["remaining"].as_i64(), warming["status"]["observedGeneration"].as_i64()),
        (Some(3), Some(1)),
        "{warming}"
    );
    assert_eq!(condition(&warming, "StockLoaded")["status"], "True", "pre-loaded at the warm-up: {warming}");
    assert_eq!(condition(&warming, "Scaled")["reason"], "NotApplicable", "no cluster, nothing to scale");
    assert_eq!(condition(&warming, "Ready")["status"], "True");

    let buyers = [shop.shopper().await, shop.shopper().await, shop.shopper().await, shop.shopper().await];
    assert_problem(shop.buy(&buyers[0], sale, "early", 1).await, StatusCode::CONFLICT, "SALE_NOT_OPEN").await;

    let open = flash_sale(&shop, &merchant, "hoodie-drop", |f| f["status"]["phase"] == "Open").await;
    assert!(
        open["events"].as_array().unwrap().iter().any(|e| e["reason"] == "Open"),
        "an Event for each transition: {open}"
    );
    let mut orders = Vec::new();
    for buyer in &buyers[..3] {
        orders.push(shop.bought(buyer, sale, 1).await);
    }
    assert_problem(shop.buy(&buyers[3], sale, "late", 1).await, StatusCode::CONFLICT, "SOLD_OUT").await;

    let sold_out = flash_sale(&shop, &merchant, "hoodie-drop", |f| f["status"]["phase"] == "SoldOut").await;
    let s = &sold_out["status"];
    assert_eq!(
        (s["remaining"].as_i64(), s["reserved"].as_i64().unwrap() + s["sold"].as_i64().unwrap()),
        (Some(0), 3),
        "{sold_out}"
    );

    // Raising the stock mid-sale reopens it; lowering it below what is held is refused.
    let mut more = manifest("hoodie-drop", product, 4, Duration::ZERO);
    more["spec"]["opensAt"] = warming["spec"]["opensAt"].clone();
    more["spec"]["closesAt"] = warming["spec"]["closesAt"].clone();
    assert_status(put(more.clone()).await, StatusCode::OK).await;
    let reopened = flash_sale(&shop, &merchant, "hoodie-drop", |f| f["status"]["phase"] == "Open").await;
    assert_eq!(
        (reopened["status"]["remaining"].as_i64(), reopened["metadata"]["generation"].as_i64()),
        (Some(1), Some(2)),
        "{reopened}"
    );
    // The replicas' sold-out flags follow the engine within a moment.
    let mut answer = shop.buy(&buyers[3], sale, "restocked", 1).await;
    for _ in 0..30 {
        if answer.status() == StatusCode::ACCEPTED {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        answer = shop.buy(&buyers[3], sale, "restocked", 1).await;
    }
    orders.push(assert_status(answer, StatusCode::ACCEPTED).await["order_id"].as_str().unwrap().to_owned());
    more["spec"]["stock"] = json!(2);
    assert_status(put(more).await, StatusCode::OK).await;
    let refused =
        flash_sale(&shop, &merchant, "hoodie-drop", |f| condition(f, "Ready")["reason"] == "StockBelowCommitted").await;
    assert_eq!(condition(&refused, "Ready")["status"], "False");
    let kept = assert_status(shop.get(&format!("/api/sales/{sale}"), None).await, StatusCode::OK).await;
    assert_eq!(
        (kept["stock"].as_i64(), kept["remaining"].as_i64()),
        (Some(4), Some(0)),
        "the refused change did not apply: {kept}"
    );

    // Deleting waits for the reservations to settle through the saga, then removes it.
    for (buyer, order) in buyers.iter().zip(&orders) {
        // The simulated PSP declines some charges; either way the units settle.
        let paid = shop.pay_when_due(buyer, order).await.status();
        assert!(paid == StatusCode::OK || paid == StatusCode::PAYMENT_REQUIRED, "{paid}");
    }
    let deleted = assert_status(
        shop.call(Method::DELETE, "/api/flashsales/hoodie-drop", Some(&merchant), None).await,
        StatusCode::ACCEPTED,
    )
    .await;
    assert_eq!(deleted["result"], "deleting");
    for _ in 0..150 {
        if shop.get("/api/flashsales/hoodie-drop", Some(&merchant)).await.status() == StatusCode::NOT_FOUND {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_problem(
        shop.get("/api/flashsales/hoodie-drop", Some(&merchant)).await,
        StatusCode::NOT_FOUND,
        "FLASH_SALE_NOT_FOUND",
    )
    .await;
    // A replica's sold-out flag may answer SOLD_OUT for its refresh interval (250 ms) first.
    let mut after = Value::Null;
    for _ in 0..20 {
        after = shop.buy(&buyers[3], sale, "after", 1).await.json().await.unwrap();
        if after["code"] != "SOLD_OUT" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!((after["status"].as_i64(), after["code"].as_str()), (Some(409), Some("SALE_CLOSED")), "{after}");
    let record = assert_status(shop.get(&format!("/api/sales/{sale}"), None).await, StatusCode::OK).await;
    assert_eq!(record["id"], sale, "the sale's record stays for its orders");
}

async fn bad_manifests_get_the_crds_messages(shop: TestShop) {
    let merchant = shop.merchant().await;
    let product = create_product(&shop, &merchant, "Poster", 10).await["id"].as_i64().unwrap();
    let put = |name: &str, body: Value| {
        let path = format!("/api/flashsales/{name}");
        let (shop, merchant) = (&shop, merchant.clone());
        async move { shop.call(Method::PUT, &path, Some(&merchant), Some(body)).await }
    };
    let mut bad = manifest("bad", product, 0, Duration::from_secs(60));
    bad["spec"]["price"] = json!("0.00");
    bad["spec"]["closesAt"] = bad["spec"]["opensAt"].clone();
    let problem = assert_problem(put("bad", bad).await, StatusCode::UNPROCESSABLE_ENTITY, "INVALID_FLASH_SALE").await;
    let messages: Vec<String> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| format!("{}: {}", e["field"].as_str().unwrap(), e["message"].as_str().unwrap()))
        .collect();
    assert_eq!(
        messages,
        [
            "spec.stock: must be between 1 and 100000000, got 0",
            "spec.price: price must be greater than zero",
            "spec: closesAt must be after opensAt"
        ]
    );
    assert_problem(put("bad", json!({"spec": "nope"})).await, StatusCode::UNPROCESSABLE_ENTITY, "INVALID_BODY").await;
    assert_problem(
        put("Bad_Name", manifest("Bad_Name", product, 1, Duration::ZERO)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "VALIDATION_FAILED",
    )
    .await;
    assert_problem(
        put("other", manifest("bad", product, 1, Duration::ZERO)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "VALIDATION_FAILED",
    )
    .await;
    let shopper = shop.shopper().await;
    assert_problem(
        shop.call(Method::PUT, "/api/flashsales/x", Some(&shopper), Some(manifest("x", product, 1, Duration::ZERO)))
            .await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;
    assert_problem(
        shop.get("/api/flashsales/nope", Some(&merchant)).await,
        StatusCode::NOT_FOUND,
        "FLASH_SALE_NOT_FOUND",
    )
    .await;
    assert_problem(shop.get("/api/flashsales", None).await, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED").await;

    // A product that does not exist passes the schema but fails in the controller, with
    // a condition and an Event, like in a cluster.
    assert_status(put("ghost", manifest("ghost", 999_999, 5, Duration::ZERO)).await, StatusCode::CREATED).await;
    let failed = flash_sale(&shop, &merchant, "ghost", |f| f["status"]["phase"] == "Failed").await;
    assert_eq!(condition(&failed, "Ready")["reason"], "ProductNotFound", "{failed}");
    assert!(
        failed["events"].as_array().unwrap().iter().any(|e| e["type"] == "Warning" && e["reason"] == "ProductNotFound"),
        "{failed}"
    );
    // Another merchant neither sees nor changes it.
    let rival = shop.merchant().await;
    assert_problem(
        shop.call(Method::DELETE, "/api/flashsales/ghost", Some(&rival), None).await,
        StatusCode::NOT_FOUND,
        "FLASH_SALE_NOT_FOUND",
    )
    .await;
    assert_problem(
        shop.call(
            Method::PUT,
            "/api/flashsales/ghost",
            Some(&rival),
            Some(manifest("ghost", product, 1, Duration::ZERO)),
        )
        .await,
        StatusCode::CONFLICT,
        "FLASH_SALE_CONFLICT",
    )
    .await;
}

async fn the_cli_applies_lists_and_deletes_yaml(shop: TestShop) {
    let merchant = shop.merchant().await;
    let product = create_product(&shop, &merchant, "Keyring", 10).await["id"].as_i64().unwrap();
    let yaml = format!(
        "apiVersion: goodsmall.io/v1alpha1\nkind: FlashSale\nmetadata:\n  name: keyring-drop\nspec:\n  productId: \
            {product}\n  stock: 5\n  price: \"9.50\"\n  opensAt: {}\n  closesAt: {}\n  perUserLimit: 2\n",
        (Utc::now() - chrono::Duration::minutes(1)).to_rfc3339_opts(SecondsFormat::Secs, true),
        (Utc::now() + chrono::Duration::hours(1)).to_rfc3339_opts(SecondsFormat::Secs, true),
    );
    let file = std::env::temp_dir().join(format!("keyring-{}.yaml", uuid::Uuid::new_v4()));
    std::fs::write(&file, yaml).unwrap();
    let cli = |command: Command| FlashSaleCli {
        url: shop.url(""),
        token: Some(merchant.clone()),
        email: None,
        password: None,
        command,
    };
    assert_eq!(
        cli(Command::Apply { file: file.clone() }).run().await.unwrap(),
        "flashsale.goodsmall.io/keyring-drop created"
    );
    assert_eq!(
        cli(Command::Apply { file: file.clone() }).run().await.unwrap(),
        "flashsale.goodsmall.io/keyring-drop unchanged"
    );
    flash_sale(&shop, &merchant, "keyring-drop", |f| f["status"]["phase"] == "Open").await;
    let table = cli(Command::Get { name: None }).run().await.unwrap();
    let row = table.lines().find(|l| l.starts_with("keyring-drop")).unwrap_or_else(|| panic!("{table}"));
    assert!(
        table.starts_with("NAME")
            && row.split_whitespace().take(4).collect::<Vec<_>>()
                == ["keyring-drop", "Open", &product.to_string(), "5"],
        "{table}"
    );
    std::fs::write(
        &file,
        "apiVersion: goodsmall.io/v1alpha1\nkind: FlashSale\nmetadata:\n  name: \
        keyring-drop\nspec:\n  productId: 1\n  stock: 0\n",
    )
    .unwrap();
    let error = cli(Command::Apply { file: file.clone() }).run().await.unwrap_err().to_string();
    assert!(error.starts_with("Error (INVALID_BODY)"), "a spec missing required fields is refused: {error}");
    assert_eq!(
        cli(Command::Delete { name: "keyring-drop".into() }).run().await.unwrap(),
        "flashsale.goodsmall.io \"keyring-drop\" deleted"
    );
    let error = cli(Command::Delete { name: "nope".into() }).run().await.unwrap_err().to_string();
    assert!(error.contains("FLASH_SALE_NOT_FOUND"), "{error}");
}

/// The CLI takes `spec.admission` as `kubectl` does: the sale is recorded with its
/// waiting room (in seconds), the status and the table show the room, and broken rules
/// get the CRD's messages.
async fn the_cli_takes_a_waiting_room(shop: TestShop) {
    let merchant = shop.merchant().await;
    let product = create_product(&shop, &merchant, "Sneaker", 10).await["id"].as_i64().unwrap();
    let yaml = |pre_queue: &str, turn_ttl: &str| {
        format!(
            "apiVersion: goodsmall.io/v1alpha1\nkind: FlashSale\nmetadata:\n  name: sneaker-drop\nspec:\n  productId: \
            {product}\n  stock: 60\n  price: \"189.00\"\n  opensAt: {}\n  closesAt: {}\n  perUserLimit: 1\n  \
            warmup:\n    lead: 10m\n  admission:\n    mode: Queue\n    preQueue: {pre_queue}\n    \
            turnTTL: {turn_ttl}\n",
            (Utc::now() + chrono::Duration::minutes(2)).to_rfc3339_opts(SecondsFormat::Secs, true),
            (Utc::now() + chrono::Duration::hours(1)).to_rfc3339_opts(SecondsFormat::Secs, true),
        )
    };
    let file = std::env::temp_dir().join(format!("sneaker-{}.yaml", uuid::Uuid::new_v4()));
    let cli = |command: Command| FlashSaleCli {
        url: shop.url(""),
        token: Some(merchant.clone()),
        email: None,
        password: None,
        command,
    };
    std::fs::write(&file, yaml("11m", "9s")).unwrap();
    let error = cli(Command::Apply { file: file.clone() }).run().await.unwrap_err().to_string();
    assert!(
        error.contains("spec.admission.preQueue: must not be longer than warmup.lead")
            && error.contains("spec.admission.turnTTL: must be between 10s and 1h"),
        "{error}"
    );
    std::fs::write(&file, yaml("5m", "2m")).unwrap();
    assert_eq!(
        cli(Command::Apply { file: file.clone() }).run().await.unwrap(),
        "flashsale.goodsmall.io/sneaker-drop created"
    );
    let pre_queue = flash_sale(&shop, &merchant, "sneaker-drop", |f| f["status"]["queue"]["state"] == "PreQueue").await;
    assert_eq!(pre_queue["status"]["queue"]["waiting"], 0, "{pre_queue}");
    assert!(
        pre_queue["events"].as_array().unwrap().iter().any(|e| e["reason"] == "QueueOpened"),
        "the room's opening is an Event: {pre_queue}"
    );
    let sale = pre_queue["status"]["saleId"].as_i64().unwrap();
    let recorded = assert_status(shop.get(&format!("/api/sales/{sale}"), None).await, StatusCode::OK).await;
    assert_eq!(
        (&recorded["admission"]["pre_queue_seconds"], &recorded["admission"]["admit_per_second"]),
        (&json!(300), &json!(2)),
        "recorded in seconds, the rate by default 60 units / 30 s: {recorded}"
    );
    assert_eq!(recorded["admission"]["turn_ttl_seconds"], 120, "{recorded}");
    let table = cli(Command::Get { name: None }).run().await.unwrap();
    let row = table.lines().find(|l| l.starts_with("sneaker-drop")).unwrap_or_else(|| panic!("{table}"));
    assert!(table.lines().next().unwrap().trim_end().ends_with("WAITING"), "{table}");
    assert_eq!(row.split_whitespace().last(), Some("0"), "nobody waiting yet: {table}");
    let one = cli(Command::Get { name: Some("sneaker-drop".into()) }).run().await.unwrap();
    assert!(one.contains("preQueue: 5m") && one.contains("state: PreQueue"), "{one}");
}

/// `remaining` in the status trails the live counters by no more than docs/operator.md
/// says (the one-process refresh).
async fn the_status_is_as_fresh_as_documented(shop: TestShop) {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/operator.md")).unwrap();
    let documented = doc
        .match_indices("at most ")
        .find_map(|(at, m)| {
            let (secs, rest) = doc[at + m.len()..].split_once(' ')?;
            rest.starts_with("s in one process").then(|| secs.parse::<u64>().ok()).flatten()
        })
        .expect(
            "docs/operator.md says how far the status may trail the sale in one process (\"at most N s in one \
            process\")",
        );
    assert_eq!(documented, goodsmall_operator::local::REFRESH.as_secs(), "the documented bound is the local refresh");
    let merchant = shop.merchant().await;
    let product = create_product(&shop, &merchant, "Poster", 100).await["id"].as_i64().unwrap();
    let put = shop.call(
        Method::PUT,
        "/api/flashsales/poster-drop",
        Some(&merchant),
        Some(manifest("poster-drop", product, 5, Duration::ZERO)),
    );
    assert_status(put.await, StatusCode::CREATED).await;
    let open = flash_sale(&shop, &merchant, "poster-drop", |f| f["status"]["phase"] == "Open").await;
    let buyer = shop.minted_shopper(9_000);
    shop.bought(&buyer, open["status"]["saleId"].as_i64().unwrap(), 1).await;
    let bought = std::time::Instant::now();
    flash_sale(&shop, &merchant, "poster-drop", |f| f["status"]["remaining"] == 4).await;
    assert!(
        bought.elapsed() <= Duration::from_secs(documented) + Duration::from_millis(500),
        "the status caught up after {:?}",
        bought.elapsed()
    );
}

/// One set of rules for a sale's terms: the same bad terms are refused by `POST
/// /api/sales` and by a FlashSale with the same message for each field (the window's
/// names the fields as each spells them), and the widest terms pass both.
async fn the_api_and_a_manifest_refuse_the_same_terms_alike(shop: TestShop) {
    let merchant = shop.merchant().await;
    let product = create_product(&shop, &merchant, "Lamp", 10).await["id"].as_i64().unwrap();
    let opens = (Utc::now() + chrono::Duration::hours(2)).to_rfc3339_opts(SecondsFormat::Millis, true);
    let closes = (Utc::now() + chrono::Duration::hours(3)).to_rfc3339_opts(SecondsFormat::Millis, true);
    let (max_stock, max_per_user) = (100_000_000, 1_000);
    let sale = |stock: i64, price: &str, per_user: i64, closes: &str| {
        json!({ "product_id": product, "stock": stock,
        "price": price, "per_user_limit": per_user, "opens_at": opens, "closes_at": closes })
    };
    let flash_sale = |name: &str, stock: i64, price: &str, per_user: i64, closes: &str| {
        let mut m = manifest(name, product, stock, Duration::ZERO);
        (m["spec"]["price"], m["spec"]["perUserLimit"], m["spec"]["opensAt"], m["spec"]["closesAt"]) =
            (json!(price), json!(per_user), json!(opens), json!(closes));
        m
    };
    let errors = |problem: &Value| -> Vec<(String, String)> {
        problem["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["field"].as_str().unwrap().to_owned(), e["message"].as_str().unwrap().to_owned()))
            .collect()
    };

    let api = assert_problem(
        shop.post("/api/sales", Some(&merchant), sale(max_stock + 1, "0.00", max_per_user + 1, &opens)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "VALIDATION_FAILED",
    )
    .await;
    let put = shop.call(
        Method::PUT,
        "/api/flashsales/alike",
        Some(&merchant),
        Some(flash_sale("alike", max_stock + 1, "0.00", max_per_user + 1, &opens)),
    );
    let crd = assert_problem(put.await, StatusCode::UNPROCESSABLE_ENTITY, "INVALID_FLASH_SALE").await;
    let (api, crd) = (errors(&api), errors(&crd));
    let fields = |e: &[(String, String)]| e.iter().map(|(f, _)| f.clone()).collect::<Vec<_>>();
    assert_eq!(fields(&api), ["stock", "per_user_limit", "price", "closes_at"], "{api:?}");
    assert_eq!(fields(&crd), ["spec.stock", "spec.perUserLimit", "spec.price", "spec"], "{crd:?}");
    let messages = |e: &[(String, String)]| e.iter().map(|(_, m)| m.clone()).collect::<Vec<_>>();
    assert_eq!(messages(&api)[..3], messages(&crd)[..3], "the same message for each value");
    assert_eq!(
        messages(&api)[..3],
        [
            "must be between 1 and 100000000, got 100000001",
            "must be between 1 and 1000, got 1001",
            "price must be greater than zero"
        ]
    );
    assert_eq!((api[3].1.as_str(), crd[3].1.as_str()), ("must be after opens_at", "closesAt must be after opensAt"));

    // The widest terms the rules allow pass both.
    assert_status(
        shop.post("/api/sales", Some(&merchant), sale(max_stock, "100000000.00", max_per_user, &closes)).await,
        StatusCode::CREATED,
    )
    .await;
    let put = shop.call(
        Method::PUT,
        "/api/flashsales/widest",
        Some(&merchant),
        Some(flash_sale("widest", max_stock, "100000000.00", max_per_user, &closes)),
    );
    assert_status(put.await, StatusCode::CREATED).await;
}

mod embedded {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_status_is_as_fresh_as_documented() {
        super::the_status_is_as_fresh_as_documented(crate::helpers::TestShop::embedded_with(&[]).await).await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_manifest_launches_a_drop_that_opens_on_time_and_sells_out() {
        super::a_manifest_launches_a_drop_that_opens_on_time_and_sells_out(
            crate::helpers::TestShop::embedded_with(&[]).await,
        )
        .await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bad_manifests_get_the_crds_messages() {
        super::bad_manifests_get_the_crds_messages(crate::helpers::TestShop::embedded_with(&[]).await).await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_api_and_a_manifest_refuse_the_same_terms_alike() {
        super::the_api_and_a_manifest_refuse_the_same_terms_alike(crate::helpers::TestShop::embedded_with(&[]).await)
            .await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_cli_applies_lists_and_deletes_yaml() {
        super::the_cli_applies_lists_and_deletes_yaml(crate::helpers::TestShop::embedded_with(&[]).await).await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_cli_takes_a_waiting_room() {
        super::the_cli_takes_a_waiting_room(crate::helpers::TestShop::embedded_with(&[]).await).await
    }
}
