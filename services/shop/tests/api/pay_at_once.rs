//! What a client does with a purchase's 202: pays at its `payment_url` at once, pays
//! without an Idempotency-Key (the order is the key), and retries the purchase to be
//! told where the order stands.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::{assert_status, TestShop};

/// The payment is there from the moment the 202 is sent: an app that shows or pays it
/// at once is never told it does not exist.
async fn a_new_order_is_paid_at_once(shop: TestShop) {
    let merchant = shop.merchant().await;
    let (_, sale) = shop.drop_of(&merchant, 10, 1, 0).await;
    for n in 0..10 {
        let me = shop.minted_shopper(7_000 + n);
        let accepted = assert_status(shop.buy(&me, sale, &format!("buy-{n}"), 1).await, StatusCode::ACCEPTED).await;
        let payment_url = accepted["payment_url"].as_str().unwrap();
        if n % 2 == 0 {
            let payment = assert_status(shop.get(payment_url, Some(&me)).await, StatusCode::OK).await;
            assert_eq!(payment["status"], "PENDING", "{payment}");
        } else {
            let order = accepted["order_id"].as_str().unwrap();
            let paid = assert_status(shop.pay(&me, order).await, StatusCode::OK).await;
            assert_eq!(paid["status"], "SUCCEEDED", "{paid}");
        }
    }
}

/// Paying takes no Idempotency-Key: an order has one payment, and paying it again
/// answers with its outcome whatever the request carries.
async fn paying_needs_no_idempotency_key(shop: TestShop) {
    let merchant = shop.merchant().await;
    let (_, sale) = shop.drop_of(&merchant, 5, 1, 0).await;
    let me = shop.minted_shopper(7_100);
    let order = shop.bought(&me, sale, 1).await;
    let pay = |key: Option<&str>| {
        let mut request = shop.client.post(shop.url(&format!("/api/payments/{order}"))).bearer_auth(&me);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        request.send()
    };
    let paid = assert_status(pay(None).await.unwrap(), StatusCode::OK).await;
    assert_eq!(paid["status"], "SUCCEEDED", "{paid}");
    let again = assert_status(pay(Some("another-key")).await.unwrap(), StatusCode::OK).await;
    assert_eq!(again, paid, "the one payment of the order, not a second charge");
    let doc = assert_status(shop.call(Method::GET, "/api/openapi.json", None, None).await, StatusCode::OK).await;
    let operation = &doc["paths"]["/api/payments/{order_id}"]["post"];
    let parameters = operation["parameters"].as_array().unwrap();
    assert!(parameters.iter().all(|p| p["name"] != "Idempotency-Key"), "the document asks for no key: {operation}");
    let text = format!("{} {}", operation["summary"], operation["description"]);
    assert!(text.contains("Idempotency-Key"), "and says why: {operation}");
}

/// A retried purchase (same key) answers 202 with its order as it stands now.
async fn a_retried_purchase_answers_the_orders_status(shop: TestShop) {
    let merchant = shop.merchant().await;
    let (_, sale) = shop.drop_of(&merchant, 5, 2, 0).await;
    let me = shop.minted_shopper(7_200);
    let status_on_retry = |key: &'static str| {
        let shop = &shop;
        let me = me.clone();
        async move {
            let again: Value = assert_status(shop.buy(&me, sale, key, 1).await, StatusCode::ACCEPTED).await;
            again["status"].as_str().unwrap().to_owned()
        }
    };
    let paid = assert_status(shop.buy(&me, sale, "paid", 1).await, StatusCode::ACCEPTED).await["order_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_status(shop.pay(&me, &paid).await, StatusCode::OK).await;
    shop.order_reaches(&me, &paid, "COMPLETE").await;
    assert_eq!(status_on_retry("paid").await, "COMPLETE");
    let canceled = assert_status(shop.buy(&me, sale, "canceled", 1).await, StatusCode::ACCEPTED).await["order_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_status(shop.cancel(&me, &canceled).await, StatusCode::OK).await;
    shop.order_reaches(&me, &canceled, "CANCELED").await;
    assert_eq!(status_on_retry("canceled").await, "CANCELED");
}

crate::in_both_modes!(settings = crate::drop_helpers::RELIABLE_PSP;
    a_new_order_is_paid_at_once, paying_needs_no_idempotency_key, a_retried_purchase_answers_the_orders_status);
