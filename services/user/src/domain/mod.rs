//! Parse, don't validate: a value of these types is known to be well-formed.

mod email;
mod personal;
mod password;

pub use email::Email;
pub use password::Password;
pub use personal::{Address, PersonName, Phone};

use goodsmall_platform::error::{ApiError, FieldError};

/// Collects every field problem of a request before answering, so the client can fix
/// them all at once.
#[derive(Default)]
pub struct FieldErrors(Vec<FieldError>);

impl FieldErrors {
    pub fn check<T>(&mut self, field: &str, parsed: Result<T, String>) -> Option<T> {
        parsed.map_err(|message| self.0.push(FieldError { field: field.into(), message })).ok()
    }

    pub fn into_result(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::validation(self.0))
        }
    }
}
