//! Service-to-service tokens for internal APIs (the operator calling the order service's
//! `/internal/...` routes): short-lived EdDSA JWTs signed with the caller's own key and
//! checked with only its public key (docs/decisions.md, "The operator's boundary").
//! Their audience differs from shoppers' tokens, and so does the key, so neither kind
//! of token is accepted where the other is expected.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use jsonwebtoken::{errors::ErrorKind, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ErrorCode};

/// The issuer of the operator's tokens.
pub const OPERATOR_ISSUER: &str = "goodsmall-operator";
/// The audience of the order service's internal API.
pub const ORDER_INTERNAL_AUDIENCE: &str = "goodsmall-order-internal";

/// How long a token is good for; a signer renews it when less than a third is left.
pub const INTERNAL_TOKEN_TTL: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Serialize, Deserialize)]
struct InternalClaims {
    /// Who calls (the operator's pod name), for the callee's logs.
    sub: String,
    iss: String,
    aud: String,
    iat: u64,
    exp: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum InternalKeyError {
    #[error("is not an Ed25519 PKCS#8 private key PEM: {0}")]
    Private(#[source] jsonwebtoken::errors::Error),
    #[error("is not an Ed25519 public key PEM: {0}")]
    Public(#[source] jsonwebtoken::errors::Error),
    #[error("could not sign an internal token: {0}")]
    Sign(#[source] jsonwebtoken::errors::Error),
}

/// Signs the caller's tokens, reusing one until a third of its life is left.
#[derive(Clone)]
pub struct InternalSigner {
    key: Arc<EncodingKey>,
    subject: String,
    current: Arc<Mutex<Option<(String, u64)>>>,
}

impl InternalSigner {
    pub fn new(private_pem: &str, subject: &str) -> Result<Self, InternalKeyError> {
        let key = EncodingKey::from_ed_pem(private_pem.as_bytes()).map_err(InternalKeyError::Private)?;
        Ok(Self { key: Arc::new(key), subject: subject.to_owned(), current: Arc::default() })
    }

    /// A bearer token for the order service's internal API.
    pub fn token(&self) -> Result<String, InternalKeyError> {
        let now = jsonwebtoken::get_current_timestamp();
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((token, exp)) = current.as_ref() {
            if now + INTERNAL_TOKEN_TTL.as_secs() / 3 < *exp {
                return Ok(token.clone());
            }
        }
        let exp = now + INTERNAL_TOKEN_TTL.as_secs();
        let claims = InternalClaims {
            sub: self.subject.clone(),
            iss: OPERATOR_ISSUER.into(),
            aud: ORDER_INTERNAL_AUDIENCE.into(),
            iat: now,
            exp,
        };
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, &self.key).map_err(InternalKeyError::Sign)?;
        *current = Some((token.clone(), exp));
        Ok(token)
    }
}

/// Checks internal tokens: signature, issuer, audience and expiry (no leeway).
#[derive(Clone)]
pub struct InternalVerifier {
    key: Arc<DecodingKey>,
    validation: Arc<Validation>,
}

impl InternalVerifier {
    pub fn new(public_pem: &str) -> Result<Self, InternalKeyError> {
        let key = DecodingKey::from_ed_pem(public_pem.as_bytes()).map_err(InternalKeyError::Public)?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[OPERATOR_ISSUER]);
        validation.set_audience(&[ORDER_INTERNAL_AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 0;
        Ok(Self { key: Arc::new(key), validation: Arc::new(validation) })
    }

    /// The caller's name, from an `Authorization` header's value.
    pub fn verify_header(&self, header: Option<&str>) -> Result<String, ApiError> {
        let token = header.and_then(|h| h.strip_prefix("Bearer ")).ok_or_else(|| {
            ApiError::new(ErrorCode::Unauthenticated, "this internal API needs the operator's bearer token")
        })?;
        let claims =
            jsonwebtoken::decode::<InternalClaims>(token.trim(), &self.key, &self.validation).map_err(|e| {
                match e.kind() {
                    ErrorKind::ExpiredSignature => {
                        ApiError::new(ErrorCode::TokenExpired, "the internal token has expired")
                    }
                    _ => ApiError::new(ErrorCode::InvalidToken, "not a token of the operator's key for this API"),
                }
            })?;
        Ok(claims.claims.sub)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{KeyPair, Role, TokenSigner};

    #[test]
    fn the_operators_token_is_accepted_and_reused_until_near_its_end() {
        let keys = KeyPair::generate();
        let signer = InternalSigner::new(&keys.private_pem, "goodsmall-operator-0").unwrap();
        let verifier = InternalVerifier::new(&keys.public_pem).unwrap();
        let token = signer.token().unwrap();
        assert_eq!(signer.token().unwrap(), token, "reused while fresh");
        assert_eq!(verifier.verify_header(Some(&format!("Bearer {token}"))).unwrap(), "goodsmall-operator-0");
        // Nearly expired: a new one is signed, good for the whole lifetime again.
        let now = jsonwebtoken::get_current_timestamp();
        signer.current.lock().unwrap().as_mut().unwrap().1 = now + 5;
        let renewed = signer.token().unwrap();
        assert!(signer.current.lock().unwrap().as_ref().unwrap().1 >= now + INTERNAL_TOKEN_TTL.as_secs(), "renewed");
        assert_eq!(verifier.verify_header(Some(&format!("Bearer {renewed}"))).unwrap(), "goodsmall-operator-0");
    }

    #[test]
    fn other_keys_shoppers_tokens_expired_and_missing_tokens_are_refused() {
        let (keys, other) = (KeyPair::generate(), KeyPair::generate());
        let verifier = InternalVerifier::new(&keys.public_pem).unwrap();
        let bearer = |t: String| verifier.verify_header(Some(&format!("Bearer {t}"))).unwrap_err().code;
        assert_eq!(
            bearer(InternalSigner::new(&other.private_pem, "x").unwrap().token().unwrap()),
            ErrorCode::InvalidToken,
            "another key"
        );
        let shopper = TokenSigner::new(&keys.private_pem, OPERATOR_ISSUER.into(), Duration::from_secs(60))
            .unwrap()
            .issue(1, Role::Admin, "s")
            .unwrap();
        assert_eq!(
            bearer(shopper),
            ErrorCode::InvalidToken,
            "a user token, even signed with the same key, has another audience"
        );
        let now = jsonwebtoken::get_current_timestamp();
        let claims = InternalClaims {
            sub: "x".into(),
            iss: OPERATOR_ISSUER.into(),
            aud: ORDER_INTERNAL_AUDIENCE.into(),
            iat: now - 120,
            exp: now - 1,
        };
        let expired = jsonwebtoken::encode(
            &Header::new(Algorithm::EdDSA),
            &claims,
            &EncodingKey::from_ed_pem(keys.private_pem.as_bytes()).unwrap(),
        )
        .unwrap();
        assert_eq!(bearer(expired), ErrorCode::TokenExpired);
        assert_eq!(verifier.verify_header(None).unwrap_err().code, ErrorCode::Unauthenticated);
        assert_eq!(verifier.verify_header(Some("Basic abc")).unwrap_err().code, ErrorCode::Unauthenticated);
        assert!(matches!(InternalVerifier::new("not a key"), Err(InternalKeyError::Public(_))));
        assert!(matches!(InternalSigner::new(&keys.public_pem, "x"), Err(InternalKeyError::Private(_))));
    }
}
