//! E-mail verification codes in the shared key-value store: only a keyed hash of the
//! code is kept, with a TTL, a wrong-try budget and a resend throttle.

use std::time::Duration;

use goodsmall_platform::{
    error::{ApiError, ErrorCode},
    kv::Kv,
};
use rand::{rngs::OsRng, Rng};

use crate::{configuration::VerificationSettings, crypto::FieldCipher, domain::Email};

/// Marks a code voided by too many wrong tries (until a new code is requested).
const LOCKED: &str = "locked";

#[derive(Clone)]
pub struct Verifications {
    kv: Kv,
    cipher: FieldCipher,
    settings: VerificationSettings,
}

struct Keys {
    code: String,
    tries: String,
    resend: String,
    verified: String,
}

impl Verifications {
    pub fn new(kv: Kv, cipher: FieldCipher, settings: VerificationSettings) -> Self {
        Self { kv, cipher, settings }
    }

    fn keys(&self, email: &Email) -> Keys {
        let h = self.cipher.lookup_hash(email.as_str());
        Keys {
            code: format!("verify:code:{h}"),
            tries: format!("verify:tries:{h}"),
            resend: format!("verify:resend:{h}"),
            verified: format!("verify:verified:{h}"),
        }
    }

    fn code_hash(&self, email: &Email, code: &str) -> String {
        self.cipher.lookup_hash(&format!("{}:{code}", email.as_str()))
    }

    pub fn code_ttl(&self) -> Duration {
        Duration::from_secs(self.settings.code_ttl_secs)
    }

    /// Issues a new 6-digit code (returned for mailing), unless one was sent too recently.
    pub async fn issue(&self, email: &Email) -> Result<String, ApiError> {
        let keys = self.keys(email);
        let throttle = Duration::from_secs(self.settings.resend_after_secs);
        if !self.kv.set_nx(&keys.resend, "1", throttle).await? {
            let wait = self.kv.ttl(&keys.resend).await?.unwrap_or(throttle);
            return Err(ApiError::new(
                ErrorCode::ResendTooSoon,
                format!("a code was just sent; ask again in {}s", wait.as_secs().max(1)),
            )
            .retry_after(wait.as_secs()));
        }
        let code = format!("{:06}", OsRng.gen_range(0..1_000_000));
        self.kv.del(&[&keys.tries]).await?;
        self.kv.set(&keys.code, &self.code_hash(email, &code), self.code_ttl()).await?;
        Ok(code)
    }

    /// Checks a code; the fifth wrong try voids it.
    pub async fn confirm(&self, email: &Email, code: &str) -> Result<(), ApiError> {
        let keys = self.keys(email);
        let stored = self.kv.get(&keys.code).await?.ok_or_else(|| {
            ApiError::new(ErrorCode::NoPendingVerification, "request a verification code first (it may have expired)")
        })?;
        if stored == LOCKED {
            return Err(self.locked(&keys).await?);
        }
        let tries = self.kv.incr(&keys.tries, self.code_ttl()).await?;
        let max = i64::from(self.settings.max_attempts);
        if tries > max {
            return Err(self.locked(&keys).await?);
        }
        if stored != self.code_hash(email, code.trim()) {
            if tries == max {
                let remaining = self.kv.ttl(&keys.code).await?.unwrap_or(self.code_ttl());
                self.kv.set(&keys.code, LOCKED, remaining).await?;
                return Err(self.locked(&keys).await?);
            }
            return Err(ApiError::new(ErrorCode::InvalidCode, format!("wrong code; {} tries left", max - tries)));
        }
        self.kv.del(&[&keys.code, &keys.tries]).await?;
        self.kv.set(&keys.verified, "1", Duration::from_secs(self.settings.verified_ttl_secs)).await?;
        Ok(())
    }

    /// A voided code: a new one may be requested once the resend throttle allows, which
    /// is what `Retry-After` says.
    async fn locked(&self, keys: &Keys) -> Result<ApiError, ApiError> {
        // Whole seconds, rounded up: a client waiting that long finds the throttle gone.
        let wait = self.kv.ttl(&keys.resend).await?.unwrap_or_default().as_millis().div_ceil(1000).max(1) as u64;
        Ok(ApiError::new(ErrorCode::VerificationLocked, format!("too many wrong codes; request a new code in {wait}s"))
            .retry_after(wait))
    }

    pub async fn is_verified(&self, email: &Email) -> Result<bool, ApiError> {
        Ok(self.kv.get(&self.keys(email).verified).await?.is_some())
    }

    /// A verification is good for one account.
    pub async fn consume(&self, email: &Email) -> Result<(), ApiError> {
        Ok(self.kv.del(&[&self.keys(email).verified]).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verifications() -> Verifications {
        let settings = VerificationSettings { resend_after_secs: 60, ..Default::default() };
        Verifications::new(Kv::memory(), FieldCipher::new(&[1; 32]), settings)
    }

    #[tokio::test]
    async fn right_code_verifies_once() {
        let v = verifications();
        let email = Email::parse("a@b.io").unwrap();
        let code = v.issue(&email).await.unwrap();
        assert_eq!(code.len(), 6);
        assert!(!v.is_verified(&email).await.unwrap());
        v.confirm(&email, &code).await.unwrap();
        assert!(v.is_verified(&email).await.unwrap());
        let again = v.confirm(&email, &code).await.unwrap_err();
        assert_eq!(again.code, ErrorCode::NoPendingVerification);
    }

    #[tokio::test]
    async fn five_wrong_codes_void_the_code() {
        let v = verifications();
        let email = Email::parse("a@b.io").unwrap();
        let code = v.issue(&email).await.unwrap();
        let wrong = if code == "000000" { "111111" } else { "000000" };
        for _ in 0..4 {
            assert_eq!(v.confirm(&email, wrong).await.unwrap_err().code, ErrorCode::InvalidCode);
        }
        assert_eq!(v.confirm(&email, wrong).await.unwrap_err().code, ErrorCode::VerificationLocked);
        assert_eq!(v.confirm(&email, &code).await.unwrap_err().code, ErrorCode::VerificationLocked);
        assert!(!v.is_verified(&email).await.unwrap());
    }

    #[tokio::test]
    async fn resend_is_throttled() {
        let v = verifications();
        let email = Email::parse("a@b.io").unwrap();
        v.issue(&email).await.unwrap();
        let err = v.issue(&email).await.unwrap_err();
        assert_eq!(err.code, ErrorCode::ResendTooSoon);
        assert!(err.retry_after_secs.unwrap() > 50);
    }
}
