//! `kubectl annotate` for the one-process shop: the one annotation the operator acts on,
//! `goodsmall.io/halted`, the merchant's emergency stop.

use axum::extract::State;
use goodsmall_platform::{
    auth::AuthUser,
    error::{ApiError, ApiResult, ErrorCode, FieldError, Problem},
    extract::{Json, Path},
};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::routes::{find, LocalState};
use crate::reconcile::HALTED_ANNOTATION;

/// A JSON merge patch of the manifest's annotations, as `kubectl annotate` sends.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnnotationPatch {
    metadata: PatchMetadata,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchMetadata {
    annotations: Map<String, Value>,
}

/// Set or remove a FlashSale's `goodsmall.io/halted` annotation (the `kubectl annotate`
/// of the one-process shop): `"true"` halts purchases within a second (SALE_HALTED),
/// `null` resumes them. Orders already made go on through the saga.
#[utoipa::path(patch, path = "/api/flashsales/{name}", tag = "flashsales", security(("bearer" = [])),
    request_body(content = Object, description = "{\"metadata\":{\"annotations\":{\"goodsmall.io/halted\":\"true\"}}}, \
        or null to remove it"),
    responses((status = 200, body = Object, description = "annotated"), (status = 403, body = Problem,
              description = "FORBIDDEN: shoppers may not"),
        (status = 404, body = Problem, description = "FLASH_SALE_NOT_FOUND: no such FlashSale, or another merchant's"),
        (status = 409, body = Problem, description = "FLASH_SALE_CONFLICT: the FlashSale is being deleted"),
        (status = 422, body = Problem, description = "INVALID_FLASH_SALE: an annotation other than \
            goodsmall.io/halted, or a value that is not a string or null")))]
pub async fn annotate(
    State(state): State<LocalState>,
    user: AuthUser,
    Path(name): Path<String>,
    Json(patch): Json<AnnotationPatch>,
) -> ApiResult<Json<Value>> {
    user.require_merchant()?;
    let mut value = None;
    let mut problems = Vec::new();
    for (key, v) in &patch.metadata.annotations {
        match (key.as_str(), v) {
            (HALTED_ANNOTATION, Value::String(s)) if s.len() <= 63 => value = Some(Some(s.clone())),
            (HALTED_ANNOTATION, Value::Null) => value = Some(None),
            (HALTED_ANNOTATION, _) => {
                problems.push(format!("{HALTED_ANNOTATION} takes a string of at most 63 characters (\"true\") or null"))
            }
            (other, _) => problems.push(format!("{other}: the one-process shop keeps only {HALTED_ANNOTATION}")),
        }
    }
    if !problems.is_empty() {
        let fields =
            problems.into_iter().map(|message| FieldError { field: "metadata.annotations".into(), message }).collect();
        let mut error = ApiError::validation(fields);
        error.code = ErrorCode::InvalidFlashSale;
        return Err(error);
    }
    let manifest = find(&state, &user, &name).await?;
    if manifest.deleting {
        return Err(ApiError::new(ErrorCode::FlashSaleConflict, format!("flashsale {name} is being deleted")));
    }
    if let Some(value) = value {
        state.operator.store.set_halted(&name, value.as_deref()).await?;
        state.operator.reconcile_now(&name).await;
    }
    Ok(Json(json!({ "name": name, "message": format!("flashsale.goodsmall.io/{name} annotated") })))
}
