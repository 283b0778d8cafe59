use axum::{
    extract::{FromRef, FromRequestParts},
    http::{header::AUTHORIZATION, request::Parts},
};

use super::{Authenticator, Role};
use crate::error::{ApiError, ErrorCode};

/// The caller, proven by a valid, unrevoked `Authorization: Bearer` access token.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub user_id: i64,
    pub role: Role,
    pub session_id: String,
}

impl AuthUser {
    /// Merchants and admins manage the catalogue; shoppers may not.
    pub fn require_merchant(&self) -> Result<(), ApiError> {
        match self.role {
            Role::Merchant | Role::Admin => Ok(()),
            Role::Shopper => Err(ApiError::new(ErrorCode::Forbidden, "only merchants and admins may do this")),
        }
    }
}

impl<S> FromRequestParts<S> for AuthUser
where
    Authenticator: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or_else(|| ApiError::new(ErrorCode::Unauthenticated, "send `Authorization: Bearer <access token>`"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ApiError::new(ErrorCode::InvalidToken, "the Authorization header must be `Bearer <token>`"))?;
        Authenticator::from_ref(state).verify(token).await
    }
}
