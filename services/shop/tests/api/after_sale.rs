//! The after-sale lifecycle on a fast clock: shipping, delivery, the return window.

use reqwest::{Method, StatusCode};

use crate::helpers::{assert_problem, TestShop};

pub(crate) const FAST_LIFECYCLE: &[(&str, &str)] = &[
    ("GOODSMALL_PAYMENT__SIMULATED_PSP__FAILURE_RATE", "0"),
    ("GOODSMALL_PAYMENT__SIMULATED_PSP__LATENCY_MILLIS", "0"),
    ("GOODSMALL_ORDER__LIFECYCLE__SHIP_AFTER_SECS", "1"),
    ("GOODSMALL_ORDER__LIFECYCLE__DELIVER_AFTER_SECS", "1"),
    ("GOODSMALL_ORDER__LIFECYCLE__RETURN_WINDOW_SECS", "3"),
    ("GOODSMALL_ORDER__LIFECYCLE__RETURN_COMPLETE_AFTER_SECS", "1"),
    ("GOODSMALL_ORDER__LIFECYCLE__TICK_MILLIS", "100"),
];

async fn a_paid_order_ships_arrives_and_can_be_returned_in_the_window(shop: TestShop) {
    let merchant = shop.merchant().await;
    let (product, sale) = shop.drop_of(&merchant, 5, 2, 0).await;
    let me = shop.shopper().await;
    let kept = shop.bought(&me, sale, 1).await;
    let returned = shop.bought(&me, sale, 1).await;
    for order in [&kept, &returned] {
        shop.pay_when_due(&me, order).await;
    }
    shop.order_reaches(&me, &returned, "DELIVERY_NOW").await;
    assert_problem(shop.cancel(&me, &returned).await, StatusCode::CONFLICT, "ORDER_STATE_CONFLICT").await;
    let ask_return = |id: String| {
        let shop = &shop;
        let me = me.clone();
        async move { shop.call(Method::POST, &format!("/api/orders/{id}/return"), Some(&me), None).await }
    };
    assert_problem(ask_return(returned.clone()).await, StatusCode::CONFLICT, "ORDER_STATE_CONFLICT").await;
    shop.order_reaches(&me, &returned, "DELIVERY_COMPLETE").await;
    let asked = ask_return(returned.clone()).await;
    assert_eq!(asked.status(), StatusCode::OK, "{}", asked.text().await.unwrap());
    shop.order_reaches(&me, &returned, "RETURN_COMPLETE").await;
    shop.order_reaches(&me, &kept, "RETURN_NOT_ALLOWED").await;
    assert_problem(ask_return(kept).await, StatusCode::CONFLICT, "ORDER_STATE_CONFLICT").await;
    // Two sold, one returned to the merchant's stock.
    shop.eventually(&format!("/api/products/{product}"), None, |p| p["quantity"] == 999).await;
}

crate::in_both_modes!(settings = crate::after_sale::FAST_LIFECYCLE;
    a_paid_order_ships_arrives_and_can_be_returned_in_the_window);
