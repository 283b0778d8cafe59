//! The HTTP shell around a service's API routes: operational endpoints, the OpenAPI
//! document, problem+json for unknown routes, body limits, the client's address,
//! timeouts, metrics, panics turned into 500 problems, and graceful shutdown.

mod client_address;
pub mod document;
mod limits;
pub mod openapi;
mod ops;
mod server;
mod shell;

pub use client_address::{resolve as resolve_client_address, ClientAddress, IpNet, TrustedProxies};
pub use document::ApiDocument;
pub use ops::{Check, Readiness};
pub use server::{build_router, shutdown_on_signal, BindError, HttpServer, Ops};
