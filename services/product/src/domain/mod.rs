//! Parse, don't validate: a value of these types is known to be well-formed.

mod cursor;
mod product_fields;

pub use cursor::Cursor;
pub use goodsmall_platform::error::FieldErrors;
pub use goodsmall_platform::money::{DecimalInput, Price};
pub use product_fields::{
    CartQuantity, Description, PageSize, ProductName, ProductStatus, StockQuantity, UnknownProductStatus,
};
