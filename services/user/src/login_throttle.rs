//! Brute-force protection for logins that cannot be turned against the account's owner.
//!
//! Failures are counted per (account, client address). After `free_failures` of them,
//! that address has to wait before its next try, and each further failure doubles the
//! wait (exponential backoff, answered `429 TOO_MANY_ATTEMPTS` with `Retry-After`); a
//! success from the address clears its count. Per account, a looser ceiling counts
//! failures from every address: past it, no address gets free failures, so a guesser
//! spread over many addresses is slowed too. Nothing ever locks the account: an
//! address that has not failed always gets its try at once, so the owner's right
//! password from their own device works while someone else guesses.
//!
//! IPv6 clients are grouped by their /64 (one subscriber's network), so an attacker
//! cannot get a fresh count per address of a prefix they hold.

use std::{
    net::{IpAddr, Ipv6Addr},
    time::Duration,
};

use goodsmall_platform::{
    error::{ApiError, ErrorCode},
    kv::{Kv, KvError},
};

use crate::{configuration::LoginSettings, crypto::FieldCipher, domain::Email};

#[derive(Clone)]
pub struct LoginThrottle {
    kv: Kv,
    cipher: FieldCipher,
    settings: LoginSettings,
}

/// One admitted login attempt; report how it ended with [`LoginThrottle::failed`] or
/// [`LoginThrottle::succeeded`].
pub struct Attempt {
    /// Failures of this (account, address).
    pair: String,
    /// Present while the address must wait; its TTL is the wait.
    wait: String,
    /// Failures of the account from every address in the current window.
    account: String,
}

impl LoginThrottle {
    pub fn new(kv: Kv, cipher: FieldCipher, settings: LoginSettings) -> Self {
        Self { kv, cipher, settings }
    }

    fn keys(&self, email: &Email, client: IpAddr) -> Attempt {
        // Keyed hashes: the store holds neither e-mails nor addresses.
        let account = self.cipher.lookup_hash(email.as_str());
        let address = self.cipher.lookup_hash(&address_group(client));
        Attempt {
            pair: format!("auth:login:failures:{account}:{address}"),
            wait: format!("auth:login:wait:{account}:{address}"),
            account: format!("auth:login:account-failures:{account}"),
        }
    }

    /// Before the password is checked: refused while this address must wait. Past its
    /// free failures an admitted attempt holds the address's turn until it ends, so
    /// tries sent in parallel cannot all slip through once the wait is over.
    pub async fn admit(&self, email: &Email, client: IpAddr) -> Result<Attempt, ApiError> {
        let attempt = self.keys(email, client);
        if let Some(wait) = self.kv.ttl(&attempt.wait).await? {
            return Err(too_many(wait));
        }
        let failures = count(&attempt.pair, self.kv.get(&attempt.pair).await?)?;
        let free = self.free_failures(&attempt).await?;
        if failures >= free && !self.kv.set_nx(&attempt.wait, "1", self.delay(failures - free)).await? {
            let wait = self.kv.ttl(&attempt.wait).await?.unwrap_or(Duration::from_secs(self.settings.base_delay_secs));
            return Err(too_many(wait));
        }
        Ok(attempt)
    }

    /// A wrong password (or unknown account): counted, and past the free failures the
    /// address waits, twice as long as after its previous failure.
    pub async fn failed(&self, attempt: Attempt) -> Result<(), ApiError> {
        let memory = Duration::from_secs(self.settings.max_delay_secs + self.settings.window_secs);
        let failures = u32::try_from(self.kv.incr_extending(&attempt.pair, memory).await?).unwrap_or(u32::MAX);
        let account_failures = self.kv.incr(&attempt.account, Duration::from_secs(self.settings.window_secs)).await?;
        if account_failures == i64::from(self.settings.account_ceiling) {
            tracing::warn!(
                account = attempt.account.rsplit(':').next().unwrap_or_default(),
                failures = account_failures,
                "failed logins for one account reached the ceiling: every address now waits after each failure"
            );
        }
        let free = self.free_failures(&attempt).await?;
        if failures >= free {
            self.kv.set(&attempt.wait, "1", self.delay(failures - free)).await?;
        }
        Ok(())
    }

    /// The right password: this address's count starts afresh. The account's count
    /// stays, since others may still be guessing.
    pub async fn succeeded(&self, attempt: Attempt) -> Result<(), ApiError> {
        Ok(self.kv.del(&[&attempt.pair, &attempt.wait]).await?)
    }

    async fn free_failures(&self, attempt: &Attempt) -> Result<u32, ApiError> {
        let account_failures = count(&attempt.account, self.kv.get(&attempt.account).await?)?;
        Ok(if account_failures >= self.settings.account_ceiling { 0 } else { self.settings.free_failures })
    }

    /// The wait after `beyond` failures past the free ones: base, 2 × base, 4 × base, …
    fn delay(&self, beyond: u32) -> Duration {
        let secs = self.settings.base_delay_secs.saturating_mul(1u64 << beyond.min(32));
        Duration::from_secs(secs.min(self.settings.max_delay_secs))
    }
}

/// A failure counter read back from the store (written by `incr`): none yet is 0; a
/// value that is not a whole number is an error, never 0 (which would hand out the
/// free failures again, or lift the account's ceiling).
fn count(key: &str, value: Option<String>) -> Result<u32, KvError> {
    let Some(value) = value else { return Ok(0) };
    let n: i64 =
        value.parse().map_err(|source| KvError::NotACounter { key: key.to_owned(), value: value.clone(), source })?;
    Ok(u32::try_from(n.max(0)).unwrap_or(u32::MAX))
}

fn too_many(wait: Duration) -> ApiError {
    let secs = wait.as_secs_f64().ceil() as u64;
    ApiError::new(
        ErrorCode::TooManyAttempts,
        format!("too many failed logins for this account from your address; try again in {}s", secs.max(1)),
    )
    .retry_after(secs)
}

/// What counts as one client: an IPv4 address, or an IPv6 /64.
fn address_group(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{}/64", Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle(settings: LoginSettings) -> LoginThrottle {
        LoginThrottle::new(Kv::memory(), FieldCipher::new(&[7u8; 32]), settings)
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// Fails `times` logins from `client`; every one must be admitted.
    async fn fail(t: &LoginThrottle, email: &Email, client: IpAddr, times: u32) {
        for n in 1..=times {
            let attempt =
                t.admit(email, client).await.unwrap_or_else(|e| panic!("failure {n} from {client} refused: {e}"));
            t.failed(attempt).await.unwrap();
        }
    }

    #[tokio::test]
    async fn a_failure_count_that_is_not_a_number_is_an_error_not_zero() {
        let t = throttle(LoginSettings::default());
        let (email, client) = (Email::parse("owner@example.com").unwrap(), ip("198.51.100.1"));
        let keys = t.keys(&email, client);
        for key in [&keys.pair, &keys.account] {
            t.kv.set(key, "lots", Duration::from_secs(60)).await.unwrap();
            let refused = t.admit(&email, client).await.err().expect("a corrupt count is not 0");
            assert_eq!(refused.code, ErrorCode::Internal, "{key}");
            let cause = std::error::Error::source(&refused).and_then(|e| e.downcast_ref::<KvError>());
            assert!(matches!(cause, Some(KvError::NotACounter { value, .. }) if value == "lots"), "{key}: {cause:?}");
            t.kv.del(&[key]).await.unwrap();
        }
        assert_eq!(count("k", None).unwrap(), 0);
        assert_eq!(count("k", Some("3".into())).unwrap(), 3);
    }

    fn waits(result: Result<Attempt, ApiError>) -> u64 {
        let e = result.err().expect("refused");
        assert_eq!(e.code, ErrorCode::TooManyAttempts);
        e.retry_after_secs.expect("a Retry-After")
    }

    #[tokio::test]
    async fn one_address_gets_free_failures_then_waits_that_double() {
        let t = throttle(LoginSettings { base_delay_secs: 1, max_delay_secs: 4, ..LoginSettings::default() });
        let email = Email::parse("owner@example.com").unwrap();
        fail(&t, &email, ip("198.51.100.1"), 5).await;
        assert_eq!(waits(t.admit(&email, ip("198.51.100.1")).await), 1);
        assert_eq!(
            (t.delay(0), t.delay(1), t.delay(2), t.delay(3), t.delay(60)),
            (
                Duration::from_secs(1),
                Duration::from_secs(2),
                Duration::from_secs(4),
                Duration::from_secs(4),
                Duration::from_secs(4)
            )
        );
        // Another address, and the same address for another account, are not held up.
        let owner = t.admit(&email, ip("203.0.113.5")).await.unwrap();
        t.succeeded(owner).await.unwrap();
        t.admit(&Email::parse("other@example.com").unwrap(), ip("198.51.100.1")).await.unwrap();
    }

    #[tokio::test]
    async fn past_the_account_ceiling_every_address_waits_after_a_failure_but_a_fresh_one_gets_its_try() {
        let t = throttle(LoginSettings { account_ceiling: 3, ..LoginSettings::default() });
        let email = Email::parse("owner@example.com").unwrap();
        fail(&t, &email, ip("198.51.100.1"), 3).await;
        assert!(
            waits(t.admit(&email, ip("198.51.100.1")).await) >= 1,
            "the guesser waits before its free failures are used up"
        );
        fail(&t, &email, ip("198.51.100.2"), 1).await;
        assert!(waits(t.admit(&email, ip("198.51.100.2")).await) >= 1, "a second guesser waits after one failure");
        let owner = t.admit(&email, ip("203.0.113.5")).await.expect("a fresh address is never locked out");
        // While that attempt is being checked, a parallel one from the same address waits.
        waits(t.admit(&email, ip("203.0.113.5")).await);
        t.succeeded(owner).await.unwrap();
        t.admit(&email, ip("203.0.113.5")).await.expect("after a success the address starts afresh");
    }

    #[tokio::test]
    async fn a_success_clears_the_address_count() {
        let t = throttle(LoginSettings::default());
        let email = Email::parse("owner@example.com").unwrap();
        fail(&t, &email, ip("198.51.100.1"), 4).await;
        let attempt = t.admit(&email, ip("198.51.100.1")).await.unwrap();
        t.succeeded(attempt).await.unwrap();
        fail(&t, &email, ip("198.51.100.1"), 5).await;
    }

    #[test]
    fn ipv6_clients_count_by_their_64() {
        assert_eq!(address_group(ip("2001:db8:1:2:aaaa::1")), address_group(ip("2001:db8:1:2:bbbb::9")));
        assert_ne!(address_group(ip("2001:db8:1:2::1")), address_group(ip("2001:db8:1:3::1")));
        assert_eq!(address_group(ip("192.0.2.1")), "192.0.2.1");
    }
}
