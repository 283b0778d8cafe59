use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use jsonwebtoken::{errors::ErrorKind, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{revoked_session_key, AuthUser, REVOCATIONS_LOADED_KEY};
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

    /// A role by its name; an unknown name (e.g. read back from a store) is an error
    /// that carries it, never taken for some other role.
    pub fn parse(s: &str) -> Result<Self, UnknownRole> {
        [Role::Shopper, Role::Merchant, Role::Admin]
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}")]
pub struct UnknownRole(pub String);

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

/// The one claim [`Authenticator::claimed_user_id`] reads.
#[derive(Deserialize)]
struct Subject {
    sub: String,
}

/// Issues access tokens (user service only).
#[derive(Clone)]
pub struct TokenSigner {
    key: Arc<EncodingKey>,
    issuer: String,
    pub access_ttl: Duration,
}

impl TokenSigner {
    pub fn new(private_pem: &str, issuer: String, access_ttl: Duration) -> Result<Self, jsonwebtoken::errors::Error> {
        Ok(Self { key: Arc::new(EncodingKey::from_ed_pem(private_pem.as_bytes())?), issuer, access_ttl })
    }

    pub fn issue(&self, user_id: i64, role: Role, session_id: &str) -> Result<String, jsonwebtoken::errors::Error> {
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
        jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, &self.key)
    }
}

/// Verifies access tokens and their session's revocation (every service).
///
/// A good signature stays good, so verified tokens are remembered (up to
/// [`VERIFIED_CAPACITY`]): a shopper's repeated requests in a drop skip the Ed25519
/// check, which was the largest single CPU cost of a purchase. Expiry is checked on
/// every use and revocation is still looked up every time, so a cached token stops
/// working at exactly the same moment as an uncached one.
#[derive(Clone)]
pub struct Authenticator {
    key: Arc<DecodingKey>,
    validation: Arc<Validation>,
    /// Reads a token's subject without checking anything (`claimed_user_id`).
    unchecked: Arc<Validation>,
    kv: Kv,
    verified: Arc<Mutex<HashMap<Box<str>, Verified>>>,
}

/// Tokens whose signature and claims have been checked, kept at most.
pub const VERIFIED_CAPACITY: usize = 50_000;

#[derive(Clone)]
struct Verified {
    user: AuthUser,
    exp: u64,
}

impl Authenticator {
    pub fn new(public_pem: &str, issuer: &str, kv: Kv) -> Result<Self, jsonwebtoken::errors::Error> {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        // No leeway: a token is refused from the first second past its `exp`, in every
        // service alike (docs/decisions.md, "Token expiry"). Only the user service
        // signs, NTP keeps the services' clocks within milliseconds, and a client
        // answered TOKEN_EXPIRED refreshes.
        validation.leeway = 0;
        let mut unchecked = Validation::new(Algorithm::EdDSA);
        unchecked.insecure_disable_signature_validation();
        unchecked.validate_exp = false;
        unchecked.validate_aud = false;
        unchecked.set_required_spec_claims(&["sub"]);
        Ok(Self {
            key: Arc::new(DecodingKey::from_ed_pem(public_pem.as_bytes())?),
            validation: Arc::new(validation),
            unchecked: Arc::new(unchecked),
            kv,
            verified: Arc::default(),
        })
    }

    pub async fn verify(&self, token: &str) -> Result<AuthUser, ApiError> {
        let user = self.verify_signed(token)?;
        self.unrevoked(super::SignedUser(user)).await
    }

    /// The user the token names, its signature, expiry and logout *not* checked unless
    /// it was verified before (a few microseconds against the signature's fifty); `None`
    /// when it names none. Only to pick the one answer that is the same for every
    /// caller who never reserved in a sold-out sale, so a forged subject learns nothing
    /// and changes nothing (docs/decisions.md, "The sold-out refusal before the
    /// signature").
    pub fn claimed_user_id(&self, token: &str) -> Option<i64> {
        if let Some(verified) = self.verified.lock().expect("verified tokens").get(token) {
            return Some(verified.user.user_id);
        }
        let claims = jsonwebtoken::decode::<Subject>(token, &self.key, &self.unchecked).ok()?.claims;
        claims.sub.parse().ok()
    }

    /// Signature, claims and expiry only; the session's logout is checked by
    /// [`unrevoked`](Self::unrevoked).
    pub(super) fn verify_signature(&self, token: &str) -> Result<AuthUser, ApiError> {
        self.verify_signed(token)
    }

    /// The signed caller, once its session is known not to have been logged out (one
    /// key-value round trip: the session's marker and the store's "revocations loaded"
    /// marker).
    pub async fn unrevoked(&self, signed: super::SignedUser) -> Result<AuthUser, ApiError> {
        let user = signed.0;
        let found = self.kv.get_many(&[&revoked_session_key(&user.session_id), REVOCATIONS_LOADED_KEY]).await?;
        let (revoked, loaded) = match found.as_slice() {
            [revoked, loaded] => (revoked.is_some(), loaded.is_some()),
            _ => return Err(ApiError::internal(format!("asked for 2 keys, the store answered {}", found.len()))),
        };
        if revoked {
            return Err(ApiError::new(ErrorCode::TokenRevoked, "this session has been logged out; log in again"));
        }
        // A store that lost its keys lost the revocations with them: no session is
        // vouched for until the user service has written them back (it checks every
        // 250 ms). The in-process store loses them only with its process, whose user
        // service writes them back before it serves.
        if !loaded && self.kv.may_lose_keys() {
            return Err(ApiError::new(
                ErrorCode::ServiceUnavailable,
                "the token store is reloading logged-out sessions; retry in a moment",
            )
            .retry_after(1));
        }
        Ok(user)
    }

    /// The token's user if its signature and claims are valid and it has not expired.
    fn verify_signed(&self, token: &str) -> Result<AuthUser, ApiError> {
        let now = jsonwebtoken::get_current_timestamp();
        let cached = self.verified.lock().expect("verified tokens").get(token).cloned();
        if let Some(Verified { user, exp }) = cached {
            if now <= exp {
                return Ok(user);
            }
            self.verified.lock().expect("verified tokens").remove(token);
            return Err(expired());
        }
        let user = self.decode(token)?;
        let mut verified = self.verified.lock().expect("verified tokens");
        if verified.len() >= VERIFIED_CAPACITY {
            // Expired ones first; if that is not enough, start afresh (a re-check costs
            // one signature verification, not a failure).
            verified.retain(|_, v| now <= v.exp);
            if verified.len() >= VERIFIED_CAPACITY {
                verified.clear();
            }
        }
        verified.insert(token.into(), user.clone());
        Ok(user.user)
    }

    fn decode(&self, token: &str) -> Result<Verified, ApiError> {
        let claims = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => expired(),
                _ => ApiError::new(ErrorCode::InvalidToken, "the access token is malformed or its signature is wrong"),
            })?
            .claims;
        let user_id = claims
            .sub
            .parse()
            .map_err(|_| ApiError::new(ErrorCode::InvalidToken, "the token's subject is not a user id"))?;
        Ok(Verified { user: AuthUser { user_id, role: claims.role, session_id: claims.sid }, exp: claims.exp })
    }
}

fn expired() -> ApiError {
    ApiError::new(ErrorCode::TokenExpired, "log in again or refresh the token")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::keys::KeyPair;

    const ISSUER: &str = "goodsmall-test";

    #[test]
    fn an_unknown_role_is_an_error_not_a_shopper() {
        for role in [Role::Shopper, Role::Merchant, Role::Admin] {
            assert_eq!(Role::parse(role.as_str()), Ok(role));
        }
        assert_eq!(Role::parse("superuser"), Err(UnknownRole("superuser".into())));
        assert_eq!(Role::parse("Shopper"), Err(UnknownRole("Shopper".into())), "case matters");
        assert_eq!(Role::parse(""), Err(UnknownRole(String::new())));
    }

    fn pair() -> (TokenSigner, Authenticator, Kv) {
        let keys = KeyPair::generate();
        let kv = Kv::memory();
        let signer = TokenSigner::new(&keys.private_pem, ISSUER.into(), Duration::from_secs(900)).unwrap();
        (signer, Authenticator::new(&keys.public_pem, ISSUER, kv.clone()).unwrap(), kv)
    }

    fn signed(signer: &TokenSigner, claims: &Claims) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), claims, &signer.key).unwrap()
    }

    #[tokio::test]
    async fn a_remembered_token_is_still_refused_once_revoked() {
        let (signer, auth, kv) = pair();
        let token = signer.issue(42, Role::Shopper, "session-1").unwrap();
        for _ in 0..2 {
            let user = auth.verify(&token).await.unwrap();
            assert_eq!((user.user_id, user.role, user.session_id.as_str()), (42, Role::Shopper, "session-1"));
        }
        assert_eq!(auth.verified.lock().unwrap().len(), 1, "verified once, then remembered");
        kv.set(&revoked_session_key("session-1"), "1", Duration::from_secs(60)).await.unwrap();
        assert_eq!(auth.verify(&token).await.unwrap_err().code, ErrorCode::TokenRevoked);
    }

    #[tokio::test]
    async fn a_remembered_token_expires_on_time() {
        let (signer, auth, _) = pair();
        let now = jsonwebtoken::get_current_timestamp();
        let claims = |exp| Claims {
            sub: "7".into(),
            sid: "s".into(),
            role: Role::Shopper,
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            iat: now - 100,
            exp,
        };
        let token = signed(&signer, &claims(now + 60));
        auth.verify(&token).await.unwrap();
        // Pretend time has passed: the remembered entry now lies beyond its expiry.
        auth.verified.lock().unwrap().get_mut(token.as_str()).unwrap().exp = now - 60;
        assert_eq!(auth.verify(&token).await.unwrap_err().code, ErrorCode::TokenExpired);
        assert!(auth.verified.lock().unwrap().is_empty(), "an expired token is forgotten");

        let stale = signed(&signer, &claims(now - 60));
        assert_eq!(auth.verify(&stale).await.unwrap_err().code, ErrorCode::TokenExpired);
    }

    #[tokio::test]
    async fn a_token_is_refused_from_the_first_second_past_its_expiry() {
        let (signer, auth, _) = pair();
        let now = jsonwebtoken::get_current_timestamp();
        let claims = |exp| Claims {
            sub: "7".into(),
            sid: "s".into(),
            role: Role::Shopper,
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            iat: now - 100,
            exp,
        };
        for past in 1..=5 {
            let token = signed(&signer, &claims(now - past));
            assert_eq!(auth.verify(&token).await.unwrap_err().code, ErrorCode::TokenExpired, "{past} s past exp");
        }
        // A remembered token too: the cache applies the same rule.
        let token = signed(&signer, &claims(now + 60));
        auth.verify(&token).await.unwrap();
        auth.verified.lock().unwrap().get_mut(token.as_str()).unwrap().exp = now - 1;
        assert_eq!(auth.verify(&token).await.unwrap_err().code, ErrorCode::TokenExpired);
    }

    /// The subject is read whoever signed the token, and nothing else is vouched for:
    /// the forged token is still refused by `verify`.
    #[tokio::test]
    async fn the_claimed_user_is_read_unchecked_and_a_forgery_stays_refused() {
        let (signer, auth, _) = pair();
        let (other, _, _) = pair();
        let forged = other.issue(42, Role::Admin, "s").unwrap();
        assert_eq!(auth.claimed_user_id(&forged), Some(42));
        assert_eq!(auth.verify(&forged).await.unwrap_err().code, ErrorCode::InvalidToken);
        assert_eq!(auth.claimed_user_id(&forged), Some(42), "not remembered as verified either way");
        assert_eq!(auth.claimed_user_id(&signer.issue(7, Role::Shopper, "s").unwrap()), Some(7));
        for garbage in ["", "not-a-jwt", "a.b.c", &forged[..forged.len() / 2]] {
            assert_eq!(auth.claimed_user_id(garbage), None, "{garbage:?}");
        }
    }

    #[tokio::test]
    async fn bad_tokens_are_never_remembered() {
        let (signer, auth, _) = pair();
        let (other, _, _) = pair();
        let forged = other.issue(42, Role::Admin, "s").unwrap();
        assert_eq!(auth.verify(&forged).await.unwrap_err().code, ErrorCode::InvalidToken);
        assert_eq!(
            auth.verify(&forged).await.unwrap_err().code,
            ErrorCode::InvalidToken,
            "still refused the second time"
        );
        let mut tampered = signer.issue(42, Role::Shopper, "s").unwrap();
        tampered.push('x');
        assert_eq!(auth.verify(&tampered).await.unwrap_err().code, ErrorCode::InvalidToken);
        assert!(auth.verified.lock().unwrap().is_empty());
    }
}
