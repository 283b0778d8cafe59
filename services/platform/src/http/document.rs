//! The OpenAPI document a process serves at `/api/openapi.json`. The one-process shop
//! serves the document of its own routes, which are all of them. A separate service
//! serves the whole API of the four (docs/openapi.json, generated from their routes):
//! the entry point's route table sends that path to one of them, and the client is
//! to get the API it can call through the entry point, not one service's part of it.

use axum::body::Bytes;
use utoipa::openapi::{
    security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
    OpenApi,
};

/// The whole API of the separate services, written by `cargo run -p goodsmall-shop
/// --bin openapigen` (a test fails when it differs from their routes).
pub const WHOLE: &str = include_str!("../../../../docs/openapi.json");

/// Which document a process serves.
#[derive(Debug, Clone)]
pub enum ApiDocument {
    /// The document of the process's own routes, under this title.
    Routes { title: String },
    /// [`WHOLE`]: what every separate service serves, whichever of them is asked.
    Whole,
}

impl ApiDocument {
    /// The JSON served; `routes` is the document of the process's own routes.
    pub(super) fn json(self, routes: OpenApi) -> Bytes {
        match self {
            ApiDocument::Routes { title } => {
                serde_json::to_vec(&titled(routes, &title)).expect("a JSON value serialises").into()
            }
            ApiDocument::Whole => Bytes::from_static(WHOLE.as_bytes()),
        }
    }
}

/// `openapi` as served: titled, described, and completed with the answers every route
/// shares ([`super::openapi::complete`]).
pub fn titled(mut openapi: OpenApi, title: &str) -> serde_json::Value {
    describe(&mut openapi, title);
    super::openapi::complete(openapi)
}

fn describe(openapi: &mut OpenApi, title: &str) {
    openapi.info.title = title.to_owned();
    openapi.info.version = env!("CARGO_PKG_VERSION").to_owned();
    openapi.info.description = Some(
        "GoodsMall HTTP API. Every error is an RFC 9457 `application/problem+json` document (`Problem`) with a \
         stable `code`; each error response lists the codes it can carry. Any operation may also answer 408 \
         REQUEST_TIMEOUT, 413 PAYLOAD_TOO_LARGE (a body over the limit, also where none is taken) and 503 \
         SERVICE_UNAVAILABLE."
            .into(),
    );
    let components = openapi.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .description(Some(
                    "An EdDSA access token from POST /api/auth/login. It is refused (401 TOKEN_EXPIRED) from the \
                     first second past its `exp`, with no leeway for clock skew: refresh it with POST \
                     /api/auth/refresh.",
                ))
                .build(),
        ),
    );
}
