//! Parse, don't validate: order statuses and quantities.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Every status of the original system. PROCESSING waits for payment; COMPLETE is
/// paid; the scheduler moves paid orders through delivery and the return window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    Processing,
    Complete,
    DeliveryNow,
    DeliveryComplete,
    Canceled,
    ReturnNow,
    ReturnComplete,
    ReturnNotAllowed,
    Failed,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 9] = [
        Self::Processing,
        Self::Complete,
        Self::DeliveryNow,
        Self::DeliveryComplete,
        Self::Canceled,
        Self::ReturnNow,
        Self::ReturnComplete,
        Self::ReturnNotAllowed,
        Self::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Processing => "PROCESSING",
            Self::Complete => "COMPLETE",
            Self::DeliveryNow => "DELIVERY_NOW",
            Self::DeliveryComplete => "DELIVERY_COMPLETE",
            Self::Canceled => "CANCELED",
            Self::ReturnNow => "RETURN_NOW",
            Self::ReturnComplete => "RETURN_COMPLETE",
            Self::ReturnNotAllowed => "RETURN_NOT_ALLOWED",
            Self::Failed => "FAILED",
        }
    }

    /// A stored status; anything else is an error naming it (never a guess, which
    /// would move or charge an order as if it were in that state).
    pub fn parse(s: &str) -> Result<Self, UnknownOrderStatus> {
        Self::ALL.into_iter().find(|st| st.as_str() == s).ok_or_else(|| UnknownOrderStatus(s.to_owned()))
    }

    /// No further change will happen on its own.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Canceled | Self::ReturnComplete | Self::ReturnNotAllowed | Self::Failed)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown order status {0:?}")]
pub struct UnknownOrderStatus(pub String);

/// Units in one purchase: 1 to 10.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PurchaseQuantity(i64);

impl PurchaseQuantity {
    pub fn parse(n: i64) -> Result<Self, String> {
        if !(1..=10).contains(&n) {
            return Err("must be between 1 and 10".into());
        }
        Ok(Self(n))
    }

    pub fn get(self) -> i64 {
        self.0
    }

    /// The engine's quantity (at least 1, as every purchase quantity is).
    pub fn units(self) -> goodsmall_sale::Quantity {
        goodsmall_sale::Quantity::new(self.0).expect("a purchase quantity is at least 1")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_and_keys_are_bounded() {
        for s in OrderStatus::ALL {
            assert_eq!(OrderStatus::parse(s.as_str()), Ok(s));
        }
        assert_eq!(OrderStatus::parse("SHIPPED"), Err(UnknownOrderStatus("SHIPPED".into())));
        assert_eq!(OrderStatus::parse("processing"), Err(UnknownOrderStatus("processing".into())), "case matters");
        assert!(PurchaseQuantity::parse(0).is_err());
        assert!(PurchaseQuantity::parse(11).is_err());
    }
}
