//! The order side of the saga: three consumers, one file each.
//! - [`checkout`]: `checkout.placed` from the product service makes the order;
//! - [`saga`]: payment outcomes move the order and announce it;
//! - [`stock`]: those order events settle the stock in the engine.

pub mod checkout;
pub mod saga;
pub mod stock;

use goodsmall_platform::events::Bus;
use goodsmall_sale::StockEngine;

use crate::orders::Orders;

pub fn subscribe(bus: &Bus, orders: Orders, engine: StockEngine) {
    bus.consume(checkout::OrderCheckout { orders: orders.clone() });
    bus.consume(saga::OrderSaga { orders });
    bus.consume(stock::OrderStock { engine });
}
