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
    extract::{Json, Path},
};
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    runner::{LocalOperator, NAMESPACE},
    store::{Applied, Recorded},
};
use crate::{crd::FlashSaleSpec, validation};

#[derive(Clone, FromRef)]
pub struct LocalState {
    pub operator: LocalOperator,
    pub authenticator: Authenticator,
}

pub fn router(state: LocalState) -> OpenApiRouter {
    OpenApiRouter::new().routes(routes!(list)).routes(routes!(apply, get, delete)).with_state(state)
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

/// Create or update a FlashSale (the `kubectl apply` of the one-process shop).
#[utoipa::path(put, path = "/api/flashsales/{name}", tag = "flashsales", security(("bearer" = [])),
    request_body(content = Object, description = "a FlashSale manifest (goodsmall.io/v1alpha1), as JSON"),
    responses((status = 201, description = "created"), (status = 200, description = "configured or unchanged"),
        (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn apply(State(state): State<LocalState>, user: AuthUser, Path(name): Path<String>, Json(body): Json<ManifestBody>) -> ApiResult<impl IntoResponse> {
    user.require_merchant()?;
    let mut errors = FieldErrors::default();
    if body.api_version != "goodsmall.io/v1alpha1" || body.kind != "FlashSale" {
        errors.check::<()>("apiVersion", Err(format!("expected goodsmall.io/v1alpha1 FlashSale, got {} {}", body.api_version, body.kind)));
    }
    if body.metadata.name != name {
        errors.check::<()>("metadata.name", Err(format!("`{}` differs from the name in the path, `{name}`", body.metadata.name)));
    }
    errors.check("metadata.name", dns_name(&name));
    errors.into_result()?;
    if let Err(problems) = validation::validate(&body.spec) {
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
    let applied = state.operator.store.apply(&name, user.user_id, &body.spec).await?.map_err(|m| ApiError::new(ErrorCode::FlashSaleConflict, m))?;
    state.operator.nudge();
    let (code, word) = match applied {
        Applied::Created => (StatusCode::CREATED, "created"),
        Applied::Configured => (StatusCode::OK, "configured"),
        Applied::Unchanged => (StatusCode::OK, "unchanged"),
    };
    Ok((code, Json(json!({ "name": name, "result": word, "message": format!("flashsale.goodsmall.io/{name} {word}") }))))
}

/// Your FlashSales with their live status (the `kubectl get fs` of the one-process shop).
#[utoipa::path(get, path = "/api/flashsales", tag = "flashsales", security(("bearer" = [])),
    responses((status = 200, body = Object), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn list(State(state): State<LocalState>, user: AuthUser) -> ApiResult<Json<Value>> {
    user.require_merchant()?;
    let items: Vec<Value> = state.operator.store.list().await?.iter().filter(|m| visible(&user, m)).map(|m| object(m, false)).collect();
    Ok(Json(json!({ "apiVersion": "goodsmall.io/v1alpha1", "kind": "FlashSaleList", "items": items })))
}

/// One FlashSale with its status and recent Events.
#[utoipa::path(get, path = "/api/flashsales/{name}", tag = "flashsales", security(("bearer" = [])),
    responses((status = 200, body = Object), (status = 404, body = Problem)))]
pub async fn get(State(state): State<LocalState>, user: AuthUser, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    user.require_merchant()?;
    Ok(Json(object(&find(&state, &user, &name).await?, true)))
}

/// Delete a FlashSale: the sale closes, reservations settle through the saga, then its
/// keys go (the finalizer's work); the manifest disappears when that is done.
#[utoipa::path(delete, path = "/api/flashsales/{name}", tag = "flashsales", security(("bearer" = [])),
    responses((status = 202, description = "deletion started"), (status = 404, body = Problem)))]
pub async fn delete(State(state): State<LocalState>, user: AuthUser, Path(name): Path<String>) -> ApiResult<impl IntoResponse> {
    user.require_merchant()?;
    find(&state, &user, &name).await?;
    state.operator.store.mark_deleting(&name).await?;
    state.operator.nudge();
    Ok((StatusCode::ACCEPTED, Json(json!({ "name": name, "result": "deleting", "message": format!("flashsale.goodsmall.io \"{name}\" deleted") }))))
}

async fn find(state: &LocalState, user: &AuthUser, name: &str) -> ApiResult<Recorded> {
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
        "metadata": { "name": m.name, "namespace": NAMESPACE, "generation": m.generation, "deleting": m.deleting },
        "spec": m.spec,
        "status": m.status,
    });
    if with_events {
        o["events"] = json!(m.events);
    }
    o
}

/// A Kubernetes object name (DNS-1123 subdomain).
fn dns_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    ok.then_some(()).ok_or_else(|| "must be lowercase letters, digits, '-' or '.', starting and ending with a letter or digit".into())
}
