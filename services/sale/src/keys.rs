//! The Redis key layout of sale and product stock, in one place: the services and the
//! operator read and write these keys. All keys of one sale share the hash tag
//! `{<sale id>}`, so they live in one Redis Cluster slot and one script can touch them.

/// Hash: product_id, price_cents, opens_at_ms, closes_at_ms, per_user_limit, initial,
/// remaining, reserved, sold, closed, halted, and epoch (set by a rebuild from the orders;
/// absent until the first). Always `initial = remaining + reserved + sold`. A sale with a
/// waiting room also has the `q_` fields `queue.lua` lists.
pub fn sale(sale_id: i64) -> String {
    format!("sale:{{{sale_id}}}")
}

/// Hash: user id → units the user holds (reserved or sold, not released).
pub fn buyers(sale_id: i64) -> String {
    format!("sale:{{{sale_id}}}:buyers")
}

/// Hash: `<user id>:<idempotency key>` → order id of the first successful answer.
pub fn idempotency(sale_id: i64) -> String {
    format!("sale:{{{sale_id}}}:idem")
}

/// Hash: order id → `<user id>:<quantity>:<state>`, state R (reserved), S (sold) or
/// X (released).
pub fn reservations(sale_id: i64) -> String {
    format!("sale:{{{sale_id}}}:reservations")
}

/// Sorted set: user id → place key, the sale's waiting room (`queue.lua`).
pub fn queue(sale_id: i64) -> String {
    format!("sale:{{{sale_id}}}:queue")
}

/// Hash: user id → the end of the shopper's turn (Unix ms), for every admitted shopper.
pub fn turns(sale_id: i64) -> String {
    format!("sale:{{{sale_id}}}:turns")
}

/// Sorted set: user id → turn's end, for admitted shoppers who have not bought yet.
pub fn pending_turns(sale_id: i64) -> String {
    format!("sale:{{{sale_id}}}:pending")
}

/// Every key of a sale.
pub fn all_of_sale(sale_id: i64) -> [String; 7] {
    [
        sale(sale_id),
        buyers(sale_id),
        idempotency(sale_id),
        reservations(sale_id),
        queue(sale_id),
        turns(sale_id),
        pending_turns(sale_id),
    ]
}

/// String: units of a regular product available now. The product service already
/// writes exactly this name (no hash tag), so it must not change. A cart checkout
/// touches several of these in one script: fine on one Redis; Redis Cluster would
/// need them tagged by a common key (e.g. the shop) first.
pub fn product_stock(product_id: i64) -> String {
    format!("product:stock:v1:{product_id}")
}

/// Hash: product id → units a cart-checkout order took, plus [`PRODUCT_ORDER_STATE`]
/// (`R` reserved, `X` released). Kept after release so a repeat changes nothing.
pub fn product_order(order_id: &str) -> String {
    format!("product:order:v1:{order_id}")
}

/// The state field of a [`product_order`] hash (product ids are numeric, so no clash).
pub const PRODUCT_ORDER_STATE: &str = "state";
