//! Sessions and refresh-token rotation. A session is a family of refresh tokens; each
//! refresh consumes the presented token and issues the next. Presenting a consumed
//! token means it leaked: the whole family is revoked.

use std::time::Duration;

use goodsmall_platform::{
    auth::{Role, TokenSigner},
    clock::now_millis,
    db::Database,
    error::{ApiError, ErrorCode},
};
use serde::Serialize;
use sqlx::Row;
use utoipa::ToSchema;

use crate::{
    crypto::{random_id, random_token, sha256_hex},
    revocations::Revocations,
};

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenPair {
    pub access_token: String,
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    pub refresh_token: String,
    pub refresh_expires_in: u64,
}

#[derive(Clone)]
pub struct Sessions {
    db: Database,
    revocations: Revocations,
    signer: TokenSigner,
    refresh_ttl: Duration,
}

impl Sessions {
    pub fn new(db: Database, revocations: Revocations, signer: TokenSigner, refresh_ttl: Duration) -> Self {
        Self { db, revocations, signer, refresh_ttl }
    }

    pub async fn start(&self, user_id: i64, role: Role) -> Result<TokenPair, ApiError> {
        let session_id = random_id();
        {
            let _q = self.db.observe("session.insert");
            sqlx::query("INSERT INTO sessions (id, user_id, created_at) VALUES (?, ?, ?)")
                .bind(&session_id)
                .bind(user_id)
                .bind(now_millis())
                .execute(self.db.pool())
                .await?;
        }
        self.issue(user_id, role, &session_id).await
    }

    async fn issue(&self, user_id: i64, role: Role, session_id: &str) -> Result<TokenPair, ApiError> {
        let refresh_token = random_token();
        {
            let _q = self.db.observe("refresh_token.insert");
            sqlx::query("INSERT INTO refresh_tokens (token_hash, session_id, expires_at) VALUES (?, ?, ?)")
                .bind(sha256_hex(&refresh_token))
                .bind(session_id)
                .bind(now_millis() + self.refresh_ttl.as_millis() as i64)
                .execute(self.db.pool())
                .await?;
        }
        Ok(TokenPair {
            access_token: self.signer.issue(user_id, role, session_id).map_err(ApiError::internal)?,
            token_type: "Bearer",
            expires_in: self.signer.access_ttl.as_secs(),
            refresh_token,
            refresh_expires_in: self.refresh_ttl.as_secs(),
        })
    }

    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenPair, ApiError> {
        let invalid = || ApiError::new(ErrorCode::InvalidRefreshToken, "log in again");
        let hash = sha256_hex(refresh_token);
        let row = {
            let _q = self.db.observe("refresh_token.find");
            sqlx::query(
                "SELECT rt.session_id, rt.expires_at, rt.used_at, s.revoked_at, u.id AS user_id, u.role \
                 FROM refresh_tokens rt JOIN sessions s ON s.id = rt.session_id JOIN users u ON u.id = s.user_id \
                 WHERE rt.token_hash = ?",
            )
            .bind(&hash)
            .fetch_optional(self.db.pool())
            .await?
            .ok_or_else(invalid)?
        };
        let session_id: String = row.try_get("session_id")?;
        if row.try_get::<Option<i64>, _>("revoked_at")?.is_some() || row.try_get::<i64, _>("expires_at")? < now_millis()
        {
            return Err(invalid());
        }
        // Consume with a compare-and-set so two concurrent uses cannot both succeed.
        let consumed = {
            let _q = self.db.observe("refresh_token.consume");
            sqlx::query("UPDATE refresh_tokens SET used_at = ? WHERE token_hash = ? AND used_at IS NULL")
                .bind(now_millis())
                .bind(&hash)
                .execute(self.db.pool())
                .await?
                .rows_affected()
                == 1
        };
        if !consumed {
            tracing::warn!(session_id, "refresh token reused; revoking its session");
            self.revoke(&session_id).await?;
            return Err(ApiError::new(
                ErrorCode::RefreshTokenReused,
                "this refresh token was already used; the session is revoked, log in again",
            ));
        }
        let role = crate::accounts::stored_role(&row)?;
        self.issue(row.try_get("user_id")?, role, &session_id).await
    }

    /// Ends one session everywhere: refresh tokens stop working (database) and access
    /// tokens too (revocation marker read by every service until they expire, written
    /// after the database's record, from which it is rebuilt if the store loses it).
    pub async fn revoke(&self, session_id: &str) -> Result<(), ApiError> {
        {
            let _q = self.db.observe("session.revoke");
            sqlx::query("UPDATE sessions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
                .bind(now_millis())
                .bind(session_id)
                .execute(self.db.pool())
                .await?;
        }
        self.revocations.mark(session_id).await?;
        Ok(())
    }

    pub async fn revoke_all(&self, user_id: i64) -> Result<(), ApiError> {
        let ids: Vec<String> = {
            let _q = self.db.observe("session.list_active");
            sqlx::query("SELECT id FROM sessions WHERE user_id = ? AND revoked_at IS NULL")
                .bind(user_id)
                .fetch_all(self.db.pool())
                .await?
                .iter()
                .map(|r| r.try_get("id"))
                .collect::<Result<_, _>>()?
        };
        for id in ids {
            self.revoke(&id).await?;
        }
        Ok(())
    }
}
