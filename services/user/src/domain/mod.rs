//! Parse, don't validate: a value of these types is known to be well-formed.

mod email;
mod password;
mod personal;

pub use email::Email;
pub use password::Password;
pub use personal::{Address, PersonName, Phone};

/// Re-exported: every service collects field problems the same way.
pub use goodsmall_platform::error::FieldErrors;
