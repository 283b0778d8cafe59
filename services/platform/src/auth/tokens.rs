use std::{sync::Arc, time::Duration};

use jsonwebtoken::{errors::ErrorKind, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{revoked_session_key, AuthUser};
use crate::{
    error::{ApiError, ErrorCode},
    kv::Kv,
};

const AUDIENCE: &str = "goodsmall-api";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Shopper,
    Merchant,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Shopper => "shopper",
            Role::Merchant => "merchant",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Role::Shopper, Role::Merchant, Role::Admin].into_iter().find(|r| r.as_str() == s)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    /// Session (refresh-token family) the token belongs to; revocation is per session.
    pub sid: String,
    pub role: Role,
    pub iss: String,
    pub aud: String,
    pub iat: u64,
    pub exp: u64,
}

/// Issues access tokens (user service only).
#[derive(Clone)]
pub struct TokenSigner {
    key: Arc<EncodingKey>,
    issuer: String,
    pub access_ttl: Duration,
}

impl TokenSigner {
    pub fn new(private_pem: &str, issuer: String, access_ttl: Duration) -> anyhow::Result<Self> {
        Ok(Self { key: Arc::new(EncodingKey::from_ed_pem(private_pem.as_bytes())?), issuer, access_ttl })
    }

    pub fn issue(&self, user_id: i64, role: Role, session_id: &str) -> anyhow::Result<String> {
        let now = jsonwebtoken::get_current_timestamp();
        let claims = Claims {
            sub: user_id.to_string(),
            sid: session_id.to_owned(),
            role,
            iss: self.issuer.clone(),
            aud: AUDIENCE.into(),
            iat: now,
            exp: now + self.access_ttl.as_secs(),
        };
        Ok(jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, &self.key)?)
    }
}

/// Verifies access tokens and their session's revocation (every service).
#[derive(Clone)]
pub struct Authenticator {
    key: Arc<DecodingKey>,
    validation: Arc<Validation>,
    kv: Kv,
}

impl Authenticator {
    pub fn new(public_pem: &str, issuer: &str, kv: Kv) -> anyhow::Result<Self> {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        Ok(Self { key: Arc::new(DecodingKey::from_ed_pem(public_pem.as_bytes())?), validation: Arc::new(validation), kv })
    }

    pub async fn verify(&self, token: &str) -> Result<AuthUser, ApiError> {
        let claims = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => ApiError::new(ErrorCode::TokenExpired, "log in again or refresh the token"),
                _ => ApiError::new(ErrorCode::InvalidToken, "the access token is malformed or its signature is wrong"),
            })?
            .claims;
        let user_id = claims
            .sub
            .parse()
            .map_err(|_| ApiError::new(ErrorCode::InvalidToken, "the token's subject is not a user id"))?;
        if self.kv.get(&revoked_session_key(&claims.sid)).await?.is_some() {
            return Err(ApiError::new(ErrorCode::TokenRevoked, "this session has been logged out; log in again"));
        }
        Ok(AuthUser { user_id, role: claims.role, session_id: claims.sid })
    }
}
