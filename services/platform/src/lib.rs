//! The ground every GoodsMall service stands on.
//!
//! A service crate builds its routers and workers from these parts; the same parts run
//! as separate services (MySQL + Redis) or all together in one process (SQLite + an
//! in-process key-value store).

pub mod auth;
pub mod clock;
pub mod configuration;
pub mod db;
pub mod error;
pub mod events;
pub mod extract;
pub mod http;
pub mod kv;
pub mod metrics;
pub mod money;
pub mod secret_file;
pub mod service;
pub mod telemetry;

pub use error::{ApiError, ErrorCode};
