//! The cart: one shopper's, and nobody else's.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::{
    catalogue::create_product,
    helpers::{assert_problem, assert_status, TestShop},
};

async fn cart_add_change_remove(shop: TestShop) {
    let merchant = shop.merchant().await;
    let hoodie = create_product(&shop, &merchant, "Hoodie", 10).await["id"].as_i64().unwrap();
    let card = create_product(&shop, &merchant, "Photocard", 10).await["id"].as_i64().unwrap();
    let me = shop.shopper().await;
    let empty = assert_status(shop.get("/api/cart", Some(&me)).await, StatusCode::OK).await;
    assert_eq!(empty["items"].as_array().unwrap().len(), 0);
    shop.post("/api/cart/items", Some(&me), json!({ "product_id": hoodie, "quantity": 1 })).await;
    let cart = assert_status(
        shop.post("/api/cart/items", Some(&me), json!({ "product_id": hoodie, "quantity": 2 })).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(cart["items"][0]["quantity"], 3, "adding again merges the line");
    assert_eq!(cart["total"], "360.00");
    shop.post("/api/cart/items", Some(&me), json!({ "product_id": card, "quantity": 1 })).await;
    let path = format!("/api/cart/items/{hoodie}");
    let cart =
        assert_status(shop.call(Method::PUT, &path, Some(&me), Some(json!({ "quantity": 1 }))).await, StatusCode::OK)
            .await;
    assert_eq!(cart["total"], "240.00");
    assert_status(shop.call(Method::DELETE, &path, Some(&me), None).await, StatusCode::NO_CONTENT).await;
    assert_problem(
        shop.call(Method::DELETE, &path, Some(&me), None).await,
        StatusCode::NOT_FOUND,
        "CART_ITEM_NOT_FOUND",
    )
    .await;
    let cart = assert_status(shop.get("/api/cart", Some(&me)).await, StatusCode::OK).await;
    assert_eq!(cart["items"].as_array().unwrap().len(), 1);
    assert_eq!(cart["items"][0]["product_id"], card);
}

async fn cart_refuses_bad_lines(shop: TestShop) {
    let merchant = shop.merchant().await;
    let hoodie = create_product(&shop, &merchant, "Hoodie", 10).await["id"].as_i64().unwrap();
    let me = shop.shopper().await;
    let add = |body| shop.post("/api/cart/items", Some(&me), body);
    assert_problem(
        add(json!({ "product_id": 987654321, "quantity": 1 })).await,
        StatusCode::NOT_FOUND,
        "PRODUCT_NOT_FOUND",
    )
    .await;
    for quantity in [0, -1, 100] {
        assert_problem(
            add(json!({ "product_id": hoodie, "quantity": quantity })).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "VALIDATION_FAILED",
        )
        .await;
    }
    assert_problem(
        add(json!({ "product_id": hoodie, "quantity": "two" })).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "INVALID_BODY",
    )
    .await;
    let path = format!("/api/cart/items/{hoodie}");
    let put = shop.call(Method::PUT, &path, Some(&me), Some(json!({ "quantity": 2 }))).await;
    assert_problem(put, StatusCode::NOT_FOUND, "CART_ITEM_NOT_FOUND").await;
}

async fn another_shoppers_cart_is_unreachable(shop: TestShop) {
    let merchant = shop.merchant().await;
    let hoodie = create_product(&shop, &merchant, "Hoodie", 10).await["id"].as_i64().unwrap();
    let alice = shop.shopper().await;
    let bob = shop.shopper().await;
    assert_status(
        shop.post("/api/cart/items", Some(&alice), json!({ "product_id": hoodie, "quantity": 2 })).await,
        StatusCode::OK,
    )
    .await;
    let bobs = assert_status(shop.get("/api/cart", Some(&bob)).await, StatusCode::OK).await;
    assert_eq!(bobs["items"].as_array().unwrap().len(), 0, "Bob sees none of Alice's lines");
    let path = format!("/api/cart/items/{hoodie}");
    // Bob's changes to "the same line" address only his own cart.
    assert_problem(
        shop.call(Method::PUT, &path, Some(&bob), Some(json!({ "quantity": 9 }))).await,
        StatusCode::NOT_FOUND,
        "CART_ITEM_NOT_FOUND",
    )
    .await;
    assert_problem(
        shop.call(Method::DELETE, &path, Some(&bob), None).await,
        StatusCode::NOT_FOUND,
        "CART_ITEM_NOT_FOUND",
    )
    .await;
    let alices = assert_status(shop.get("/api/cart", Some(&alice)).await, StatusCode::OK).await;
    assert_eq!(alices["items"][0]["quantity"], 2);
    assert_problem(shop.get("/api/cart", None).await, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED").await;
}

crate::in_both_modes!(cart_add_change_remove, cart_refuses_bad_lines, another_shoppers_cart_is_unreachable);
