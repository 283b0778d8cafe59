//! The whole API of the distributed deployment: the four separate services' routes in
//! one document. Each of them serves it (`goodsmall_platform::http::document::WHOLE`,
//! read from docs/openapi.json, which `openapigen` writes from this).

/// The title of the shop's documents, whole or one-process.
pub const TITLE: &str = "GoodsMall";

/// The separate services' public routes, documented as they are served.
pub fn whole() -> serde_json::Value {
    let mut openapi = goodsmall_user::openapi();
    for part in [goodsmall_product::openapi(), goodsmall_order::openapi(), goodsmall_payment::openapi()] {
        openapi.merge(part);
    }
    goodsmall_platform::http::document::titled(openapi, TITLE)
}

/// [`whole`] as docs/openapi.json holds it.
pub fn whole_json() -> String {
    serde_json::to_string_pretty(&whole()).expect("a JSON value serialises") + "\n"
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_services_serve_their_routes_whole() {
        let served: serde_json::Value =
            serde_json::from_str(goodsmall_platform::http::document::WHOLE).expect("docs/openapi.json is JSON");
        assert!(
            served == super::whole(),
            "docs/openapi.json differs from the services' routes: run `cargo run -p goodsmall-shop --bin openapigen`"
        );
    }
}
