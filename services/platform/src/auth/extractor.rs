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

/// The caller of a validly signed, unexpired access token whose session has *not* been
/// checked for logout yet. Only for answers that neither change nor reveal anything
/// but the caller's own (the waiting room's place); anything else calls
/// [`Authenticator::unrevoked`] first.
#[derive(Debug, Clone)]
pub struct SignedUser(pub(super) AuthUser);

impl SignedUser {
    pub fn user_id(&self) -> i64 {
        self.0.user_id
    }
}

/// The `Authorization: Bearer` token as sent, nothing checked yet but its presence and
/// form. For the one answer that may come before the signature is checked (the
/// purchase's sold-out refusal, [`Authenticator::claimed_user_id`]); everything else
/// goes through [`Authenticator::verify`].
#[derive(Debug, Clone)]
pub struct BearerToken(String);

impl BearerToken {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn bearer_token(parts: &Parts) -> Result<&str, ApiError> {
    let header = parts
        .headers
        .get(AUTHORIZATION)
        .ok_or_else(|| ApiError::new(ErrorCode::Unauthenticated, "send `Authorization: Bearer <access token>`"))?;
    header
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::new(ErrorCode::InvalidToken, "the Authorization header must be `Bearer <token>`"))
}

impl<S> FromRequestParts<S> for AuthUser
where
    Authenticator: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let token = bearer_token(parts)?;
        Authenticator::from_ref(state).verify(token).await
    }
}

impl<S> FromRequestParts<S> for SignedUser
where
    Authenticator: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let token = bearer_token(parts)?;
        Authenticator::from_ref(state).verify_signature(token).map(SignedUser)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for BearerToken {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        bearer_token(parts).map(|token| BearerToken(token.to_owned()))
    }
}
