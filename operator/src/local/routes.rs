//! The one-process shop's FlashSale API: what `kubectl apply/get/delete` does against
//! a cluster, for merchants, over HTTP (the CLI in [`super::cli`] calls it).

use axum::{
    extract::{FromRef, State},
    http::StatusCode,
    response::IntoResponse,
};
use goodsmall_platform::{
    auth::{AuthUser, Authenticator, Role},
    error::{ApiError, ApiResult, ErrorCode, FieldError, FieldErrors, Problem},
    extract::{rfc3339_instant, Json, Path},
};
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    runner::{LocalOperator, NAMESPACE},
    store::{Applied, ManifestStoreError, Recorded},
};
use crate::{crd::FlashSaleSpec, validation};

#[derive(Clone, FromRef)]
pub struct LocalState {
    pub operator: LocalOperator,
    pub authenticator: Authenticator,
}

pub fn router(state: LocalState) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(apply, get, delete, super::annotate::annotate))
        .with_state(state)
}

/// The manifest store's failures, answered here for every local route: an unreachable
/// database is a 503 the client may retry, a corrupt manifest or anything else a 500
/// (`ApiError::failure`). The error is kept as the answer's cause and logged, with its
/// whole chain, when the answer is made.
impl From<ManifestStoreError> for ApiError {
    fn from(e: ManifestStoreError) -> Self {
        ApiError::failure(e)
    }
}

/// A FlashSale manifest as `kubectl` would send it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestBody {
    api_version: String,
    kind: String,
    metadata: Metadata,
    spec: FlashSaleSpec,
}

#[derive(Deserialize)]
pub struct Metadata {
    name: String,
}

/// The manifest's schema in the OpenAPI document: `spec` is the CRD's own (the fields
/// and limits a cluster checks), in OpenAPI 3.1 terms.
impl utoipa::PartialSchema for ManifestBody {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let crd = serde_json::to_value(<crate::crd::FlashSale as kube::CustomResourceExt>::crd())
            .expect("the CRD serialises");
        let spec = openapi_31(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"].clone());
        let manifest = json!({
            "type": "object",
            "description": "A FlashSale manifest, as `kubectl apply` sends it (crds/flashsale.yaml).",
            "required": ["apiVersion", "kind", "metadata", "spec"],
            "properties": {
                "apiVersion": { "type": "string", "enum": ["goodsmall.io/v1alpha1"] },
                "kind": { "type": "string", "enum": ["FlashSale"] },
                "metadata": {
                    "type": "object",
                    "required": ["name"],
                    "properties": { "name": {
                        "type": "string", "description": "The name in the path (a DNS-1123 subdomain).",
                        "minLength": 1, "maxLength": 253, "pattern": "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
                    } },
                },
                "spec": spec,
            },
        });
        serde_json::from_value(manifest).expect("the manifest schema is a schema")
    }
}

impl utoipa::ToSchema for ManifestBody {}

/// A CRD schema (OpenAPI 3.0 with Kubernetes extensions) as OpenAPI 3.1: `nullable`
/// becomes a `null` type, and the `x-kubernetes-*` rules (which the validation module
/// checks with the same messages) are dropped.
fn openapi_31(schema: Value) -> Value {
    match schema {
        Value::Object(fields) => {
            let nullable = fields.get("nullable").and_then(Value::as_bool).unwrap_or(false);
            let mut out: serde_json::Map<String, Value> = fields
                .into_iter()
                .filter(|(k, _)| k != "nullable" && !k.starts_with("x-kubernetes"))
                .map(|(k, v)| (k, openapi_31(v)))
                .collect();
            if nullable {
                if let Some(Value::String(t)) = out.get("type").cloned() {
                    out.insert("type".into(), json!([t, "null"]));
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(openapi_31).collect()),
        other => other,
    }
}

/// Create or update a FlashSale (the `kubectl apply` of the one-process shop).
#[utoipa::path(put, path = "/api/flashsales/{name}", tag = "flashsales", security(("bearer" = [])),
    request_body(content = ManifestBody, description = "a FlashSale manifest (goodsmall.io/v1alpha1), as JSON"),
    responses((status = 201, body = Object, description = "created"), (status = 200, body = Object,
              description = "configured or unchanged"),
        (status = 403, body = Problem, description = "FORBIDDEN: shoppers may not"),
        (status = 409, body = Problem, description = "FLASH_SALE_CONFLICT: another merchant's, or being deleted"),
        (status = 422, body = Problem, description = "INVALID_FLASH_SALE: the spec breaks the CRD's rules; \
            VALIDATION_FAILED: `apiVersion`, `kind` or `metadata.name`")))]
pub async fn apply(
    State(state): State<LocalState>,
    user: AuthUser,
    Path(name): Path<String>,
    Json(body): Json<ManifestBody>,
) -> ApiResult<impl IntoResponse> {
    user.require_merchant()?;
    let mut errors = FieldErrors::default();
    if body.api_version != "goodsmall.io/v1alpha1" || body.kind != "FlashSale" {
        errors.check::<()>(
            "apiVersion",
            Err(format!("expected goodsmall.io/v1alpha1 FlashSale, got {} {}", body.api_version, body.kind)),
        );
    }
    if body.metadata.name != name {
        errors.check::<()>(
            "metadata.name",
            Err(format!("`{}` differs from the name in the path, `{name}`", body.metadata.name)),
        );
    }
    errors.check("metadata.name", dns_name(&name));
    errors.into_result()?;
    let mut problems = validation::validate(&body.spec).err().unwrap_or_default();
    // A cluster's API server refuses these as not a `date-time`; the same here.
    for (field, at) in [("spec.opensAt", body.spec.opens_at), ("spec.closesAt", body.spec.closes_at)] {
        if let Err(message) = rfc3339_instant(at) {
            problems.push(format!("{field}: {message}"));
        }
    }
    if !problems.is_empty() {
        let fields = problems
            .into_iter()
            .map(|p| {
                let (field, message) = p.split_once(": ").unwrap_or(("spec", &p));
                FieldError { field: field.to_owned(), message: message.to_owned() }
            })
            .collect();
        let mut error = ApiError::validation(fields);
        error.code = ErrorCode::InvalidFlashSale;
        return Err(error);
    }
    let applied = state
        .operator
        .store
        .apply(&name, user.user_id, &body.spec)
        .await?
        .map_err(|m| ApiError::new(ErrorCode::FlashSaleConflict, m))?;
    state.operator.nudge();
    let (code, word) = match applied {
        Applied::Created => (StatusCode::CREATED, "created"),
        Applied::Configured => (StatusCode::OK, "configured"),
        Applied::Unchanged => (StatusCode::OK, "unchanged"),
    };
    Ok((
        code,
        Json(json!({ "name": name, "result": word, "message": format!("flashsale.goodsmall.io/{name} {word}") })),
    ))
}

/// Your FlashSales with their live status (the `kubectl get fs` of the one-process shop).
#[utoipa::path(get, path = "/api/flashsales", tag = "flashsales", security(("bearer" = [])),
    responses((status = 200, body = Object), (status = 401, body = Problem), (status = 403, body = Problem,
              description = "FORBIDDEN: shoppers may not")))]
pub async fn list(State(state): State<LocalState>, user: AuthUser) -> ApiResult<Json<Value>> {
    user.require_merchant()?;
    let items: Vec<Value> =
        state.operator.store.list().await?.iter().filter(|m| visible(&user, m)).map(|m| object(m, false)).collect();
    Ok(Json(json!({ "apiVersion": "goodsmall.io/v1alpha1", "kind": "FlashSaleList", "items": items })))
}

/// One FlashSale with its status and recent Events.
#[utoipa::path(get, path = "/api/flashsales/{name}", tag = "flashsales", security(("bearer" = [])),
    responses((status = 200, body = Object), (status = 403, body = Problem,
              description = "FORBIDDEN: shoppers may not"),
        (status = 404, body = Problem, description = "FLASH_SALE_NOT_FOUND")))]
pub async fn get(State(state): State<LocalState>, user: AuthUser, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    user.require_merchant()?;
    Ok(Json(object(&find(&state, &user, &name).await?, true)))
}

/// Delete a FlashSale: the sale closes, reservations settle through the saga, then its
/// keys go (the finalizer's work); the manifest disappears when that is done.
#[utoipa::path(delete, path = "/api/flashsales/{name}", tag = "flashsales", security(("bearer" = [])),
    responses((status = 202, body = Object, description = "deletion started"), (status = 403, body = Problem,
              description = "FORBIDDEN: shoppers may not"),
        (status = 404, body = Problem, description = "FLASH_SALE_NOT_FOUND")))]
pub async fn delete(
    State(state): State<LocalState>,
    user: AuthUser,
    Path(name): Path<String>,
) -> ApiResult<impl IntoResponse> {
    user.require_merchant()?;
    find(&state, &user, &name).await?;
    state.operator.store.mark_deleting(&name).await?;
    state.operator.nudge();
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "name": name, "result": "deleting",
                "message": format!("flashsale.goodsmall.io \"{name}\" deleted") })),
    ))
}

pub(super) async fn find(state: &LocalState, user: &AuthUser, name: &str) -> ApiResult<Recorded> {
    let found = state.operator.store.get(name).await?.filter(|m| visible(user, m));
    found.ok_or_else(|| ApiError::new(ErrorCode::FlashSaleNotFound, format!("no flashsale named {name}")))
}

fn visible(user: &AuthUser, m: &Recorded) -> bool {
    user.role == Role::Admin || m.merchant_id == user.user_id
}

fn object(m: &Recorded, with_events: bool) -> Value {
    let mut o = json!({
        "apiVersion": "goodsmall.io/v1alpha1",
        "kind": "FlashSale",
        "metadata": {
            "name": m.name,
            "namespace": NAMESPACE,
            "generation": m.generation,
            "deleting": m.deleting,
            "annotations": annotations(m),
        },
        "spec": m.spec,
        "status": m.status,
    });
    if with_events {
        o["events"] = json!(m.events);
    }
    o
}

fn annotations(m: &Recorded) -> Value {
    let mut a = serde_json::Map::new();
    if let Some(v) = &m.halted {
        a.insert(crate::reconcile::HALTED_ANNOTATION.into(), json!(v));
    }
    Value::Object(a)
}

/// A Kubernetes object name (DNS-1123 subdomain).
fn dns_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    ok.then_some(()).ok_or_else(|| {
        "must be lowercase letters, digits, '-' or '.', starting and ending with a letter or digit".into()
    })
}
