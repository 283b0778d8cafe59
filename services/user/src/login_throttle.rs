//! Failed logins per e-mail are counted in a fixed window; past the limit, further
//! tries are refused before the password is even checked.

use std::time::Duration;

use goodsmall_platform::{
    error::{ApiError, ErrorCode},
    kv::Kv,
};

use crate::{configuration::LoginSettings, crypto::FieldCipher, domain::Email};

#[derive(Clone)]
pub struct LoginThrottle {
    kv: Kv,
    cipher: FieldCipher,
    settings: LoginSettings,
}

impl LoginThrottle {
    pub fn new(kv: Kv, cipher: FieldCipher, settings: LoginSettings) -> Self {
        Self { kv, cipher, settings }
    }

    fn key(&self, email: &Email) -> String {
        format!("auth:login-failures:{}", self.cipher.lookup_hash(email.as_str()))
    }

    pub async fn check(&self, email: &Email) -> Result<(), ApiError> {
        let key = self.key(email);
        let failures: u32 = self.kv.get(&key).await?.and_then(|v| v.parse().ok()).unwrap_or(0);
        if failures >= self.settings.max_failures {
            let wait = self.kv.ttl(&key).await?.map_or(self.settings.window_secs, |d| d.as_secs());
            return Err(ApiError::new(ErrorCode::TooManyAttempts, format!("too many failed logins; try again in {wait}s"))
                .retry_after(wait));
        }
        Ok(())
    }

    pub async fn record_failure(&self, email: &Email) -> Result<(), ApiError> {
        self.kv.incr(&self.key(email), Duration::from_secs(self.settings.window_secs)).await?;
        Ok(())
    }

    pub async fn reset(&self, email: &Email) -> Result<(), ApiError> {
        Ok(self.kv.del(&[&self.key(email)]).await?)
    }
}
