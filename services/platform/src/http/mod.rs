//! The HTTP shell around a service's API routes: operational endpoints, the OpenAPI
//! document, problem+json for unknown routes, body limits, timeouts, metrics,
//! panics turned into 500 problems, and graceful shutdown.

mod ops;
mod server;

pub use ops::{Check, Readiness};
pub use server::{build_router, shutdown_on_signal, HttpServer, Ops};
