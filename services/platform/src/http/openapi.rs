//! The OpenAPI document as served. Handlers declare their own outcomes; the answers
//! that the layers in front of every handler give (the body limit, the time-out, the
//! bearer, body, path, query and `Idempotency-Key` extractors) are the same on every
//! route, so they are added here from what each operation declares instead of by hand
//! on each handler. Every error response is an `application/problem+json` [`Problem`].

use serde_json::{json, Map, Value};
use utoipa::{openapi::OpenApi, PartialSchema, ToSchema};

use crate::error::{ErrorCode, Problem};

pub const PROBLEM_MEDIA_TYPE: &str = "application/problem+json";

/// Any operation: a body over the limit (refused before the handler runs, also on
/// routes that take none), no answer in time, or a store or service that does not
/// answer.
pub const EVERY_OPERATION: &[ErrorCode] =
    &[ErrorCode::PayloadTooLarge, ErrorCode::RequestTimeout, ErrorCode::ServiceUnavailable];
/// An operation secured by the bearer scheme (the `AuthUser`, `SignedUser` and
/// `BearerToken` extractors).
pub const BEARER: &[ErrorCode] =
    &[ErrorCode::Unauthenticated, ErrorCode::InvalidToken, ErrorCode::TokenExpired, ErrorCode::TokenRevoked];
/// An operation with a JSON request body (the `Json` extractor).
pub const JSON_BODY: &[ErrorCode] =
    &[ErrorCode::MalformedJson, ErrorCode::UnsupportedMediaType, ErrorCode::InvalidBody];
/// An operation with path parameters (the `Path` extractor; also a string that is not
/// UTF-8 once percent-decoded).
pub const PATH_PARAMETERS: &[ErrorCode] = &[ErrorCode::InvalidPathParameter];
/// An operation with query parameters (the `Query` extractor).
pub const QUERY_PARAMETERS: &[ErrorCode] = &[ErrorCode::InvalidQuery];
/// An operation that takes an `Idempotency-Key` header (the `IdempotencyKey` extractor).
pub const IDEMPOTENCY_KEY: &[ErrorCode] = &[ErrorCode::IdempotencyKeyRequired, ErrorCode::InvalidHeader];

const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/// The document served at `/api/openapi.json`: `openapi` with every error response a
/// problem document and every answer of the shared layers listed.
pub fn complete(openapi: OpenApi) -> Value {
    let mut doc = serde_json::to_value(openapi).expect("an OpenAPI document serialises");
    add_problem_schemas(&mut doc);
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for item in paths.values_mut() {
            let Some(item) = item.as_object_mut() else { continue };
            let shared_parameters = item.get("parameters").cloned().unwrap_or(Value::Null);
            for (method, operation) in item.iter_mut() {
                if METHODS.contains(&method.as_str()) {
                    complete_operation(operation, &shared_parameters);
                    qualify_operation_id(operation);
                }
            }
        }
    }
    doc
}

/// The codes the shared layers may answer `operation` with, from what it declares.
pub fn implied_codes(operation: &Value, shared_parameters: &Value) -> Vec<ErrorCode> {
    let mut codes = EVERY_OPERATION.to_vec();
    let secured = operation["security"].as_array().is_some_and(|s| s.iter().any(|r| r.get("bearer").is_some()));
    if secured {
        codes.extend(BEARER);
    }
    let json_body = operation["requestBody"]["content"].as_object().is_some_and(|c| c.keys().any(|k| is_json(k)));
    if json_body {
        codes.extend(JSON_BODY);
    }
    let parameters: Vec<&Value> =
        [&operation["parameters"], shared_parameters].into_iter().filter_map(Value::as_array).flatten().collect();
    let located = |place: &str| parameters.iter().any(|p| p["in"] == place);
    if located("path") {
        codes.extend(PATH_PARAMETERS);
    }
    if located("query") {
        codes.extend(QUERY_PARAMETERS);
    }
    if parameters
        .iter()
        .any(|p| p["in"] == "header" && p["name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case("idempotency-key")))
    {
        codes.extend(IDEMPOTENCY_KEY);
    }
    codes
}

fn is_json(media_type: &str) -> bool {
    let essence = media_type.split(';').next().unwrap_or_default().trim();
    essence == "application/json" || essence.ends_with("+json")
}

fn complete_operation(operation: &mut Value, shared_parameters: &Value) {
    let codes = implied_codes(operation, shared_parameters);
    let Some(operation) = operation.as_object_mut() else { return };
    let responses = operation.entry("responses").or_insert_with(|| json!({}));
    let Some(responses) = responses.as_object_mut() else { return };
    let mut statuses: Vec<String> = codes.iter().map(|c| c.status().as_u16().to_string()).collect();
    statuses.sort();
    statuses.dedup();
    for status in statuses {
        let response = responses.entry(status.clone()).or_insert_with(|| json!({ "description": "" }));
        let described = response["description"].as_str().unwrap_or_default().trim().to_owned();
        let missing: Vec<&str> = codes
            .iter()
            .filter(|c| c.status().as_u16().to_string() == status)
            .map(|c| c.as_str())
            .filter(|name| !names(&described, name))
            .collect();
        if !missing.is_empty() {
            let missing = missing.join(", ");
            response["description"] =
                Value::String(if described.is_empty() { missing } else { format!("{described}; {missing}") });
        }
    }
    for (status, response) in responses.iter_mut() {
        if status.starts_with('4') || status.starts_with('5') {
            as_problem(status, response);
        }
        camel_case_links(response);
    }
}

/// utoipa 5 writes a link's fields in snake case (`operation_id`); OpenAPI spells
/// them `operationId`, `operationRef` and `requestBody`, and tools ignore the others.
fn camel_case_links(response: &mut Value) {
    let Some(links) = response.get_mut("links").and_then(Value::as_object_mut) else { return };
    for link in links.values_mut().filter_map(Value::as_object_mut) {
        for (snake, camel) in
            [("operation_id", "operationId"), ("operation_ref", "operationRef"), ("request_body", "requestBody")]
        {
            if let Some(value) = link.remove(snake) {
                link.insert(camel.to_owned(), value);
            }
        }
    }
}

/// utoipa names an operation after its handler, and several services have a `detail`
/// or a `list`: an operation id must be unique in the document (clients and tools find
/// operations by it), so it is qualified by the operation's first tag: `orders_detail`.
fn qualify_operation_id(operation: &mut Value) {
    let (Some(id), Some(tag)) = (operation["operationId"].as_str(), operation["tags"][0].as_str()) else { return };
    if !id.starts_with(&format!("{tag}_")) {
        operation["operationId"] = Value::String(format!("{tag}_{id}"));
    }
}

/// Whether `text` names the code `name` as a word (`SOLD_OUT` is not in `SOLD_OUT_X`).
fn names(text: &str, name: &str) -> bool {
    text.split(|c: char| !(c.is_ascii_uppercase() || c == '_')).any(|word| word == name)
}

/// An error response: a problem document, with `Retry-After` where one is sent.
fn as_problem(status: &str, response: &mut Value) {
    response["content"] = json!({ PROBLEM_MEDIA_TYPE: { "schema": { "$ref": "#/components/schemas/Problem" } } });
    if response["description"].as_str().is_none_or(|d| d.trim().is_empty()) {
        // A handler that names no code: the status's reason phrase, not a guess at codes.
        let reason = status
            .parse()
            .ok()
            .and_then(|s| axum::http::StatusCode::from_u16(s).ok())
            .and_then(|s| s.canonical_reason());
        response["description"] = Value::String(reason.unwrap_or("A problem document").to_owned());
    }
    let retry_after = |required: bool, description: &str| {
        json!({ "Retry-After": { "description": description,
        "required": required, "schema": { "type": "integer", "minimum": 1 } } })
    };
    match status {
        "429" => response["headers"] = retry_after(true, "Seconds to wait before trying again."),
        "503" => response["headers"] = retry_after(true, "Seconds to wait before retrying."),
        _ => {}
    }
}

/// `Problem`, `ErrorCode` (every code) and `FieldError`, whether or not a handler named them.
fn add_problem_schemas(doc: &mut Value) {
    let mut schemas = vec![(Problem::name().into_owned(), Problem::schema())];
    Problem::schemas(&mut schemas);
    let components =
        doc.as_object_mut().expect("an OpenAPI document is an object").entry("components").or_insert_with(|| json!({}));
    let known =
        components.as_object_mut().expect("components is an object").entry("schemas").or_insert_with(|| json!({}));
    let known: &mut Map<String, Value> = known.as_object_mut().expect("schemas is an object");
    for (name, schema) in schemas {
        known.insert(name, serde_json::to_value(schema).expect("a schema serialises"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn operation(spec: Value) -> Value {
        let mut doc = json!({ "openapi": "3.1.0", "info": { "title": "t", "version": "1" },
            "paths": { "/x/{id}": { "post": spec } } });
        let openapi: OpenApi = serde_json::from_value(doc.take()).unwrap();
        complete(openapi)["paths"]["/x/{id}"]["post"].clone()
    }

    #[test]
    fn every_error_response_is_a_problem_document() {
        let op = operation(json!({
            "responses": {
                "200": { "description": "ok" },
                "404": {
                    "description": "SALE_NOT_FOUND",
                    "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Problem" } } },
                },
            }
        }));
        for status in ["404", "408", "413", "503"] {
            let content = op["responses"][status]["content"].as_object().unwrap_or_else(|| panic!("{status}: {op}"));
            assert_eq!(content.keys().collect::<Vec<_>>(), [PROBLEM_MEDIA_TYPE], "{status}");
            assert_eq!(content[PROBLEM_MEDIA_TYPE]["schema"]["$ref"], "#/components/schemas/Problem");
        }
        assert!(op["responses"]["200"].get("content").is_none());
        assert_eq!(op["responses"]["404"]["description"], "SALE_NOT_FOUND");
        assert_eq!(op["responses"]["503"]["headers"]["Retry-After"]["required"], true);
        // Nothing that the operation does not declare.
        for status in ["400", "401", "415", "422"] {
            assert!(op["responses"].get(status).is_none(), "{status}: {op}");
        }
    }

    #[test]
    fn the_shared_layers_answers_follow_from_the_declaration() {
        let op = operation(json!({
            "security": [{ "bearer": [] }],
            "parameters": [
                { "name": "id", "in": "path", "required": true, "schema": { "type": "integer" } },
                { "name": "size", "in": "query", "required": false, "schema": { "type": "integer" } },
                { "name": "Idempotency-Key", "in": "header", "required": true, "schema": { "type": "string" } }
            ],
            "requestBody": { "content": { "application/json": { "schema": { "type": "object" } } } },
            "responses": {
                "202": { "description": "accepted" },
                "422": { "description": "VALIDATION_FAILED: `quantity`" },
                "429": { "description": "" },
            }
        }));
        let responses = &op["responses"];
        let described = |status: &str| {
            responses[status]["description"].as_str().unwrap_or_else(|| panic!("no {status}: {op}")).to_owned()
        };
        for code in
            ["INVALID_PATH_PARAMETER", "INVALID_QUERY", "MALFORMED_JSON", "IDEMPOTENCY_KEY_REQUIRED", "INVALID_HEADER"]
        {
            assert!(names(&described("400"), code), "{code}: {}", described("400"));
        }
        assert_eq!(described("401"), "UNAUTHENTICATED, INVALID_TOKEN, TOKEN_EXPIRED, TOKEN_REVOKED");
        assert_eq!(described("415"), "UNSUPPORTED_MEDIA_TYPE");
        assert_eq!(described("422"), "VALIDATION_FAILED: `quantity`; INVALID_BODY");
        assert_eq!(described("429"), "Too Many Requests", "an empty description is the reason phrase");
        assert_eq!(responses["429"]["headers"]["Retry-After"]["required"], true);
        for status in ["400", "401", "408", "413", "415", "422", "429", "503"] {
            assert!(responses[status]["content"][PROBLEM_MEDIA_TYPE].is_object(), "{status}");
        }
    }

    #[test]
    fn the_problem_schema_lists_every_code() {
        let doc = complete(
            serde_json::from_value(
                json!({ "openapi": "3.1.0", "info": { "title": "t", "version": "1" }, "paths": {} }),
            )
            .unwrap(),
        );
        let schemas = &doc["components"]["schemas"];
        assert_eq!(schemas["Problem"]["properties"]["code"]["$ref"], "#/components/schemas/ErrorCode");
        let listed: Vec<&str> =
            schemas["ErrorCode"]["enum"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
        let every: Vec<String> = ErrorCode::ALL.iter().map(|c| c.as_str().to_owned()).collect();
        assert_eq!(listed, every);
        assert!(listed.contains(&"SALE_HALTED"));
        assert!(schemas["FieldError"].is_object());
        let required = schemas["Problem"]["required"].as_array().unwrap();
        assert!(!required.contains(&json!("errors")), "`errors` appears only with VALIDATION_FAILED");
    }

    #[test]
    fn links_use_the_openapi_field_names() {
        let op = operation(json!({ "responses": { "201": { "description": "created", "links": {
            "detail": {
                "operation_id": "sales_detail",
                "parameters": { "id": "$response.body#/id" },
                "request_body": { "a": 1 },
            },
        } } } }));
        let link = &op["responses"]["201"]["links"]["detail"];
        assert_eq!(link["operationId"], "sales_detail", "{link}");
        assert_eq!(link["requestBody"], json!({ "a": 1 }), "{link}");
        assert!(link.get("operation_id").is_none() && link.get("request_body").is_none(), "{link}");
    }

    #[test]
    fn operation_ids_are_qualified_by_tag() {
        let op = operation(json!({ "operationId": "detail", "tags": ["orders"], "responses": {} }));
        assert_eq!(op["operationId"], "orders_detail");
    }

    #[test]
    fn a_code_is_named_as_a_word() {
        assert!(names("SALE_NOT_OPEN, SOLD_OUT or PURCHASE_LIMIT", "SOLD_OUT"));
        assert!(!names("SOLD_OUT_LATER", "SOLD_OUT"));
        assert!(!names("", "SOLD_OUT"));
    }
}
