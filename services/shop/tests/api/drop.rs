//! The drop: purchase decisions and their codes, the order → payment saga, cancelling,
//! checkout of a cart, and strangers. Payments always succeed here (see `faults` for
//! declines and expiry).

use reqwest::StatusCode;
use serde_json::json;

use crate::{
    catalogue::create_product,
    helpers::{assert_problem, assert_status, TestShop},
};

async fn a_purchase_is_accepted_paid_and_completed(shop: TestShop) {
    let merchant = shop.merchant().await;
    let (product, sale) = shop.drop_of(&merchant, 5, 2, 0).await;
    let me = shop.shopper().await;
    let response = shop.buy(&me, sale, "first-try", 2).await;
    let location = response.headers().get("location").map(|v| v.to_str().unwrap().to_owned());
    let accepted = assert_status(response, StatusCode::ACCEPTED).await;
    let order_id = accepted["order_id"].as_str().unwrap().to_owned();
    assert_eq!(location.as_deref(), Some(format!("/api/orders/{order_id}").as_str()));
    assert_eq!(accepted["status"], "PROCESSING");
    assert_eq!(accepted["payment_url"], format!("/api/payments/{order_id}"));

    let order = assert_status(shop.get(&format!("/api/orders/{order_id}"), Some(&me)).await, StatusCode::OK).await;
    assert_eq!(
        (order["status"].as_str(), order["total"].as_str(), order["sale_id"].as_i64()),
        (Some("PROCESSING"), Some("98.00"), Some(sale))
    );
    let counters = assert_status(shop.get(&format!("/api/sales/{sale}"), None).await, StatusCode::OK).await;
    assert_eq!((counters["remaining"].as_i64(), counters["reserved"].as_i64()), (Some(3), Some(2)));

    let paid = assert_status(shop.pay_when_due(&me, &order_id).await, StatusCode::OK).await;
    assert_eq!(paid["status"], "SUCCEEDED");
    assert_eq!(paid["amount"], "98.00", "{paid}");
    let again = assert_status(shop.pay(&me, &order_id).await, StatusCode::OK).await;
    assert_eq!(again["status"], "SUCCEEDED", "paying again answers the same outcome");
    shop.order_reaches(&me, &order_id, "COMPLETE").await;
    shop.sale_settles_at(sale, 3, 2).await;
    // The product row follows the saga: 1000 units, 2 paid for.
    let path = format!("/api/products/{product}");
    shop.eventually(&path, None, |p| p["quantity"] == 998).await;
    let mine = assert_status(shop.get("/api/orders", Some(&me)).await, StatusCode::OK).await;
    assert_eq!(mine["items"][0]["id"], order_id.as_str());
}

async fn each_refusal_has_its_code(shop: TestShop) {
    let merchant = shop.merchant().await;
    let me = shop.shopper().await;
    let (_, later) = shop.drop_of(&merchant, 5, 1, 3600).await;
    assert_problem(shop.buy(&me, later, "k1", 1).await, StatusCode::CONFLICT, "SALE_NOT_OPEN").await;
    assert_problem(shop.buy(&me, 999_999, "k1", 1).await, StatusCode::NOT_FOUND, "SALE_NOT_FOUND").await;

    let (_, sale) = shop.drop_of(&merchant, 3, 2, 0).await;
    assert_problem(shop.buy(&me, sale, "k2", 3).await, StatusCode::CONFLICT, "PURCHASE_LIMIT").await;
    let first = shop.buy(&me, sale, "k3", 2).await;
    let first = assert_status(first, StatusCode::ACCEPTED).await;
    let repeat = assert_status(shop.buy(&me, sale, "k3", 2).await, StatusCode::ACCEPTED).await;
    assert_eq!(repeat["order_id"], first["order_id"], "the same key answers the same order");
    assert_problem(shop.buy(&me, sale, "k4", 1).await, StatusCode::CONFLICT, "PURCHASE_LIMIT").await;
    let other = shop.shopper().await;
    assert_problem(shop.buy(&other, sale, "k5", 2).await, StatusCode::CONFLICT, "INSUFFICIENT_STOCK").await;
    shop.bought(&other, sale, 1).await;
    assert_problem(shop.buy(&other, sale, "k6", 1).await, StatusCode::CONFLICT, "SOLD_OUT").await;
    let late_retry = assert_status(shop.buy(&me, sale, "k3", 2).await, StatusCode::ACCEPTED).await;
    assert_eq!(late_retry["order_id"], first["order_id"], "a retry after the sell-out still gets its order");
    let counters = assert_status(shop.get(&format!("/api/sales/{sale}"), None).await, StatusCode::OK).await;
    assert_eq!(
        (counters["remaining"].as_i64(), counters["reserved"].as_i64()),
        (Some(0), Some(3)),
        "repeats took nothing"
    );

    let (_, closing) = shop.drop_of(&merchant, 5, 1, 0).await;
    assert_status(
        shop.post(&format!("/api/sales/{closing}/close"), Some(&merchant), json!({})).await,
        StatusCode::NO_CONTENT,
    )
    .await;
    assert_problem(shop.buy(&me, closing, "k7", 1).await, StatusCode::CONFLICT, "SALE_CLOSED").await;
}

async fn cancelling_releases_or_refunds(shop: TestShop) {
    let merchant = shop.merchant().await;
    let (_, sale) = shop.drop_of(&merchant, 4, 4, 0).await;
    let me = shop.shopper().await;
    let unpaid = shop.bought(&me, sale, 1).await;
    shop.pay_when_due(&me, &shop.bought(&me, sale, 1).await).await;
    let paid = shop.list_orders(&me).await.into_iter().find(|id| *id != unpaid).unwrap();
    shop.order_reaches(&me, &paid, "COMPLETE").await;

    let canceled = assert_status(shop.cancel(&me, &unpaid).await, StatusCode::OK).await;
    assert_eq!(canceled["status"], "CANCELED");
    assert_problem(shop.cancel(&me, &unpaid).await, StatusCode::CONFLICT, "ORDER_STATE_CONFLICT").await;
    shop.eventually(&format!("/api/payments/{unpaid}"), Some(&me), |p| p["status"] == "CANCELED").await;
    assert_problem(shop.pay(&me, &unpaid).await, StatusCode::CONFLICT, "PAYMENT_CLOSED").await;

    assert_status(shop.cancel(&me, &paid).await, StatusCode::OK).await;
    shop.eventually(&format!("/api/payments/{paid}"), Some(&me), |p| p["status"] == "REFUNDED").await;
    shop.sale_settles_at(sale, 4, 0).await;
}

async fn only_the_owner_sees_or_changes_an_order(shop: TestShop) {
    let merchant = shop.merchant().await;
    let (_, sale) = shop.drop_of(&merchant, 4, 1, 0).await;
    let owner = shop.shopper().await;
    let order_id = shop.bought(&owner, sale, 1).await;
    shop.eventually(&format!("/api/payments/{order_id}"), Some(&owner), |p| p["status"] == "PENDING").await;
    let stranger = shop.shopper().await;
    let order = format!("/api/orders/{order_id}");
    assert_problem(shop.get(&order, Some(&stranger)).await, StatusCode::NOT_FOUND, "ORDER_NOT_FOUND").await;
    assert_problem(shop.cancel(&stranger, &order_id).await, StatusCode::NOT_FOUND, "ORDER_NOT_FOUND").await;
    assert_problem(
        shop.get(&format!("/api/payments/{order_id}"), Some(&stranger)).await,
        StatusCode::NOT_FOUND,
        "PAYMENT_NOT_FOUND",
    )
    .await;
    assert_problem(shop.pay(&stranger, &order_id).await, StatusCode::NOT_FOUND, "PAYMENT_NOT_FOUND").await;
    assert!(shop.list_orders(&stranger).await.is_empty());
    assert_problem(shop.get(&order, None).await, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED").await;
    let still = assert_status(shop.get(&order, Some(&owner)).await, StatusCode::OK).await;
    assert_eq!(still["status"], "PROCESSING", "the stranger changed nothing");
}

async fn a_cart_checks_out_all_lines_or_none(shop: TestShop) {
    let merchant = shop.merchant().await;
    let hoodie = create_product(&shop, &merchant, "Hoodie", 3).await["id"].as_i64().unwrap();
    let card = create_product(&shop, &merchant, "Photocard", 10).await["id"].as_i64().unwrap();
    let me = shop.shopper().await;
    let checkout = |token: String, key: &'static str| {
        let shop = &shop;
        async move {
            shop.client
                .post(shop.url("/api/cart/checkout"))
                .bearer_auth(token)
                .header("Idempotency-Key", key)
                .send()
                .await
                .unwrap()
        }
    };
    assert_problem(checkout(me.clone(), "c0").await, StatusCode::UNPROCESSABLE_ENTITY, "CART_EMPTY").await;
    shop.post("/api/cart/items", Some(&me), json!({ "product_id": hoodie, "quantity": 4 })).await;
    shop.post("/api/cart/items", Some(&me), json!({ "product_id": card, "quantity": 2 })).await;
    assert_problem(checkout(me.clone(), "c1").await, StatusCode::CONFLICT, "INSUFFICIENT_STOCK").await;
    let stock = |id: i64| {
        let shop = &shop;
        async move {
            assert_status(shop.get(&format!("/api/products/{id}/stock"), None).await, StatusCode::OK).await["available"]
                .as_i64()
        }
    };
    assert_eq!((stock(hoodie).await, stock(card).await), (Some(3), Some(10)), "a short line reserves nothing");

    shop.call(reqwest::Method::PUT, &format!("/api/cart/items/{hoodie}"), Some(&me), Some(json!({ "quantity": 3 })))
        .await;
    let accepted = assert_status(checkout(me.clone(), "c2").await, StatusCode::ACCEPTED).await;
    let order_id = accepted["order_id"].as_str().unwrap().to_owned();
    let repeat = assert_status(checkout(me.clone(), "c2").await, StatusCode::ACCEPTED).await;
    assert_eq!(repeat["order_id"], order_id.as_str());
    assert_eq!((stock(hoodie).await, stock(card).await), (Some(0), Some(8)));
    let cart = assert_status(shop.get("/api/cart", Some(&me)).await, StatusCode::OK).await;
    assert!(cart["items"].as_array().unwrap().is_empty(), "checkout empties the cart");

    let order = shop.order_reaches(&me, &order_id, "PROCESSING").await;
    assert_eq!((order["total"].as_str(), order["sale_id"].is_null()), (Some("600.00"), true), "{order}");
    assert_status(shop.pay_when_due(&me, &order_id).await, StatusCode::OK).await;
    shop.order_reaches(&me, &order_id, "COMPLETE").await;
    shop.eventually(&format!("/api/products/{hoodie}"), None, |p| p["quantity"] == 0).await;
    assert_status(shop.cancel(&me, &order_id).await, StatusCode::OK).await;
    for _ in 0..200 {
        if stock(hoodie).await == Some(3) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!((stock(hoodie).await, stock(card).await), (Some(3), Some(10)), "a refund puts the units back");
}

impl TestShop {
    pub async fn list_orders(&self, token: &str) -> Vec<String> {
        let page = assert_status(self.get("/api/orders", Some(token)).await, StatusCode::OK).await;
        page["items"].as_array().unwrap().iter().map(|o| o["id"].as_str().unwrap().to_owned()).collect()
    }
}

crate::in_both_modes!(settings = crate::drop_helpers::RELIABLE_PSP;
    a_purchase_is_accepted_paid_and_completed,
    each_refusal_has_its_code,
    cancelling_releases_or_refunds,
    only_the_owner_sees_or_changes_an_order,
    a_cart_checks_out_all_lines_or_none,
);
