//! The merchant's emergency stop on the one-process shop, through the CLI's
//! `goodsmall flashsale annotate NAME goodsmall.io/halted=true` (what `kubectl annotate`
//! does on a cluster): new purchases answer 409 SALE_HALTED within a second, the status
//! says Halted, an order already made is paid through the saga, and removing the
//! annotation resumes the drop.

use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use goodsmall_operator::local::cli::{Command, FlashSaleCli};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::{
    catalogue::create_product,
    helpers::{assert_problem, assert_status, TestShop},
};

async fn status(shop: &TestShop, token: &str, name: &str) -> Value {
    assert_status(shop.get(&format!("/api/flashsales/{name}"), Some(token)).await, StatusCode::OK).await
}

/// Waits (at most `within`) until a purchase by `buyer` with fresh keys answers `code`;
/// returns how long it took.
async fn answers_within(shop: &TestShop, buyer: &str, sale: i64, code: &str, within: Duration) -> Duration {
    let started = Instant::now();
    for attempt in 0.. {
        let answer: Value = shop
            .buy(buyer, sale, &format!("probe-{code}-{attempt}-{}", uuid::Uuid::new_v4()), 1)
            .await
            .json()
            .await
            .unwrap();
        if answer["code"] == code {
            return started.elapsed();
        }
        assert!(started.elapsed() < within, "no {code} within {within:?}: {answer}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    unreachable!()
}

async fn a_halted_drop_refuses_purchases_lets_orders_settle_and_resumes(shop: TestShop) {
    let merchant = shop.merchant().await;
    let product = create_product(&shop, &merchant, "Signed Vinyl", 100).await["id"].as_i64().unwrap();
    let at = |d: chrono::Duration| (Utc::now() + d).to_rfc3339_opts(SecondsFormat::Secs, true);
    let manifest = json!({
        "apiVersion": "goodsmall.io/v1alpha1", "kind": "FlashSale", "metadata": { "name": "vinyl-drop" },
        "spec": {
            "productId": product, "stock": 5, "price": "30.00", "perUserLimit": 1,
            "opensAt": at(chrono::Duration::minutes(-1)), "closesAt": at(chrono::Duration::hours(1)),
        }
    });
    assert_status(
        shop.call(Method::PUT, "/api/flashsales/vinyl-drop", Some(&merchant), Some(manifest)).await,
        StatusCode::CREATED,
    )
    .await;
    let mut open = Value::Null;
    for _ in 0..150 {
        open = status(&shop, &merchant, "vinyl-drop").await;
        if open["status"]["phase"] == "Open" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let sale = open["status"]["saleId"].as_i64().unwrap_or_else(|| panic!("not open: {open}"));
    let (first, probe) = (shop.shopper().await, shop.shopper().await);
    let order = assert_status(shop.buy(&first, sale, "first-buy", 1).await, StatusCode::ACCEPTED).await["order_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Before the halt, `first` (at the per-shopper limit) is refused for the limit.
    assert_problem(shop.buy(&first, sale, "second", 1).await, StatusCode::CONFLICT, "PURCHASE_LIMIT").await;

    let cli = |command: Command| FlashSaleCli {
        url: shop.url(""),
        token: Some(merchant.clone()),
        email: None,
        password: None,
        command,
    };
    let annotate = |value: &str| cli(Command::Annotate { name: "vinyl-drop".into(), annotations: vec![value.into()] });
    assert_eq!(
        annotate("goodsmall.io/halted=true").run().await.unwrap(),
        "flashsale.goodsmall.io/vinyl-drop annotated"
    );
    // Probed with the shopper at the limit, so the probes never take stock.
    let took = answers_within(&shop, &first, sale, "SALE_HALTED", Duration::from_secs(1)).await;
    eprintln!("halted after {took:?}");
    let halted =
        assert_problem(shop.buy(&probe, sale, "while-halted", 1).await, StatusCode::CONFLICT, "SALE_HALTED").await;
    assert!(halted["detail"].as_str().unwrap().contains("halted"), "{halted}");
    let fs = status(&shop, &merchant, "vinyl-drop").await;
    assert_eq!(fs["status"]["phase"], "Halted", "{fs}");
    assert_eq!(fs["metadata"]["annotations"]["goodsmall.io/halted"], "true");
    let condition = fs["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Halted")
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        (condition["status"].as_str(), condition["reason"].as_str()),
        (Some("True"), Some("HaltedByMerchant")),
        "{fs}"
    );
    assert!(fs["events"].as_array().unwrap().iter().any(|e| e["reason"] == "Halted"), "an Event: {fs}");
    // The shopper's retry of the accepted purchase still gets its order, and it is paid.
    let retried = assert_status(shop.buy(&first, sale, "first-buy", 1).await, StatusCode::ACCEPTED).await;
    assert_eq!(retried["order_id"], order.as_str(), "{retried}");
    let paid = shop.pay_when_due(&first, &order).await.status();
    assert!(paid == StatusCode::OK || paid == StatusCode::PAYMENT_REQUIRED, "the saga goes on while halted: {paid}");

    assert_eq!(annotate("goodsmall.io/halted-").run().await.unwrap(), "flashsale.goodsmall.io/vinyl-drop annotated");
    answers_within(&shop, &first, sale, "PURCHASE_LIMIT", Duration::from_secs(1)).await;
    assert_status(shop.buy(&probe, sale, "resumed", 1).await, StatusCode::ACCEPTED).await;
    let fs = status(&shop, &merchant, "vinyl-drop").await;
    assert_eq!(fs["status"]["phase"], "Open", "{fs}");
    assert!(fs["metadata"]["annotations"].get("goodsmall.io/halted").is_none(), "{fs}");

    // Only the halt annotation is kept; a bad value or another key is refused.
    let error = cli(Command::Annotate { name: "vinyl-drop".into(), annotations: vec!["team=drops".into()] })
        .run()
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("INVALID_FLASH_SALE") && error.contains("goodsmall.io/halted"), "{error}");
    let error = cli(Command::Annotate { name: "ghost".into(), annotations: vec!["goodsmall.io/halted=true".into()] })
        .run()
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("FLASH_SALE_NOT_FOUND"), "{error}");
}

mod embedded {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_halted_drop_refuses_purchases_lets_orders_settle_and_resumes() {
        super::a_halted_drop_refuses_purchases_lets_orders_settle_and_resumes(
            crate::helpers::TestShop::embedded_with(&[]).await,
        )
        .await
    }
}
