//! The saga when payments go wrong: a declined payment fails the order, an unpaid one
//! expires; either way the units go back to the sale.

use goodsmall_platform::events::contracts::kinds;
use reqwest::StatusCode;

use crate::helpers::{assert_problem, assert_status, TestShop};

/// Every charge is declined; an unpaid order expires after 2 s.
pub(crate) const DECLINING_PSP: &[(&str, &str)] = &[
    ("GOODSMALL_PAYMENT__SIMULATED_PSP__FAILURE_RATE", "1"),
    ("GOODSMALL_PAYMENT__SIMULATED_PSP__LATENCY_MILLIS", "0"),
    ("GOODSMALL_PAYMENT__TIMEOUT_SECS", "2"),
    ("GOODSMALL_PAYMENT__EXPIRY_TICK_MILLIS", "100"),
];

async fn a_declined_payment_fails_the_order_and_releases_its_units(shop: TestShop) {
    let merchant = shop.merchant().await;
    let (product, sale) = shop.drop_of(&merchant, 3, 1, 0).await;
    let me = shop.shopper().await;
    let order_id = shop.bought(&me, sale, 1).await;
    let declined =
        assert_problem(shop.pay_when_due(&me, &order_id).await, StatusCode::PAYMENT_REQUIRED, "PAYMENT_DECLINED").await;
    assert!(declined["detail"].as_str().unwrap().contains("released"), "{declined}");
    assert_problem(shop.pay(&me, &order_id).await, StatusCode::PAYMENT_REQUIRED, "PAYMENT_DECLINED").await;
    shop.order_reaches(&me, &order_id, "FAILED").await;
    let counters = shop.settled_sale(sale).await;
    assert_eq!((counters["remaining"].as_i64(), counters["sold"].as_i64()), (Some(3), Some(0)));
    // The limit counts units held, so the shopper may try again.
    shop.bought(&me, sale, 1).await;
    // Only once `product-stock` has handled the failure can its quantity tell whether
    // the failed order was wrongly counted as sold.
    shop.event_handled(&order_id, kinds::ORDER_FAILED).await;
    let detail = assert_status(shop.get(&format!("/api/products/{product}"), None).await, StatusCode::OK).await;
    assert_eq!(detail["quantity"], 1000, "nothing was sold");
}

async fn an_unpaid_order_expires_and_releases_its_units(shop: TestShop) {
    let merchant = shop.merchant().await;
    let (_, sale) = shop.drop_of(&merchant, 2, 2, 0).await;
    let me = shop.shopper().await;
    let order_id = shop.bought(&me, sale, 2).await;
    let payment = shop.eventually(&format!("/api/payments/{order_id}"), Some(&me), |p| p["status"] != "PENDING").await;
    assert_eq!(payment["status"], "EXPIRED", "{payment}");
    shop.order_reaches(&me, &order_id, "CANCELED").await;
    assert_problem(shop.pay(&me, &order_id).await, StatusCode::CONFLICT, "PAYMENT_CLOSED").await;
    let counters = shop.settled_sale(sale).await;
    assert_eq!(counters["remaining"].as_i64(), Some(2), "{counters}");
}

crate::in_both_modes!(settings = crate::saga_faults::DECLINING_PSP;
    a_declined_payment_fails_the_order_and_releases_its_units,
    an_unpaid_order_expires_and_releases_its_units,
);
