//! The user service: e-mail verification, sign-up, login with rotating refresh
//! tokens, logout, password change and profiles. Personal fields are encrypted at
//! rest; only this service holds the token signing key.

pub mod accounts;
pub mod configuration;
pub mod crypto;
pub mod domain;
pub mod login_throttle;
pub mod mail;
pub mod revocations;
pub mod routes;
pub mod sessions;
pub mod startup;
pub mod state;
pub mod verification;

/// This service's part of the public API document.
pub use routes::openapi;
