//! The user service's own settings (section `user`).

use std::time::Duration;

use base64::{engine::general_purpose::STANDARD, Engine};
use goodsmall_platform::configuration::{
    ConfigError, DatabaseSettings, ExposeSecret, HttpSettings, RedisSettings, SecretString, Section, Settings,
};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSettings {
    pub database: DatabaseSettings,
    /// Base64 of 32 random bytes: the AES-256-GCM key of personal fields (and, derived
    /// from it, the e-mail lookup hash key). `openssl rand -base64 32` makes one.
    pub data_key: SecretString,
    #[serde(default)]
    pub tokens: TokenSettings,
    #[serde(default)]
    pub verification: VerificationSettings,
    #[serde(default)]
    pub login: LoginSettings,
    #[serde(default)]
    pub mail: MailSettings,
    #[serde(default)]
    pub password_hashing: PasswordHashing,
    /// An admin account created at start when missing (optional).
    #[serde(default)]
    pub bootstrap_admin: Option<BootstrapAccount>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TokenSettings {
    pub access_ttl_secs: u64,
    pub refresh_ttl_secs: u64,
}

impl Default for TokenSettings {
    fn default() -> Self {
        Self { access_ttl_secs: 15 * 60, refresh_ttl_secs: 30 * 24 * 3600 }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VerificationSettings {
    pub code_ttl_secs: u64,
    pub resend_after_secs: u64,
    pub max_attempts: u32,
    /// How long a verified e-mail may be used to sign up.
    pub verified_ttl_secs: u64,
}

impl Default for VerificationSettings {
    fn default() -> Self {
        Self { code_ttl_secs: 600, resend_after_secs: 60, max_attempts: 5, verified_ttl_secs: 1800 }
    }
}

/// Login throttling (see `login_throttle`): no setting can lock an account.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoginSettings {
    /// Failed logins one client address may make for one account before each further
    /// try from there has to wait.
    pub free_failures: u32,
    /// The first wait; every further failure from that address doubles it, up to
    /// `max_delay_secs`.
    pub base_delay_secs: u64,
    pub max_delay_secs: u64,
    /// Failed logins for one account from all addresses within `window_secs` after
    /// which no address gets free failures any more (each one waits after every
    /// failure); an address that has not failed still gets its try at once.
    pub account_ceiling: u32,
    pub window_secs: u64,
}

impl Default for LoginSettings {
    fn default() -> Self {
        Self {
            free_failures: 5,
            base_delay_secs: 1,
            max_delay_secs: 15 * 60,
            account_ceiling: 100,
            window_secs: 15 * 60,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MailSettings {
    /// `smtp://host:port` (plain), `smtp://user:pass@host:587?tls=required` (STARTTLS),
    /// `smtps://user:pass@host:465`, or `dev-mailbox` (kept in memory, readable at
    /// `GET /api/dev/mailbox`; the one-process default). A secret: it may hold the
    /// SMTP password.
    pub transport: SecretString,
    pub from: String,
    pub max_attempts: u32,
}

impl Default for MailSettings {
    fn default() -> Self {
        Self { transport: DEV_MAILBOX.into(), from: "GoodsMall <no-reply@goodsmall.dev>".into(), max_attempts: 8 }
    }
}

/// Argon2id cost; the defaults are OWASP's recommendation.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PasswordHashing {
    pub memory_kib: u32,
    pub iterations: u32,
}

impl Default for PasswordHashing {
    fn default() -> Self {
        Self { memory_kib: 19 * 1024, iterations: 2 }
    }
}

impl MailSettings {
    /// Whether mail stays in the in-memory dev mailbox (no SMTP server).
    pub fn is_dev_mailbox(&self) -> bool {
        self.transport.expose_secret() == DEV_MAILBOX
    }
}

/// `mail.transport` of the in-memory dev mailbox.
pub const DEV_MAILBOX: &str = "dev-mailbox";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootstrapAccount {
    pub email: String,
    pub password: SecretString,
    #[serde(default = "default_admin_name")]
    pub name: String,
}

fn default_admin_name() -> String {
    "Administrator".into()
}

impl Section for UserSettings {
    fn validate(&self, key: &str) -> Result<(), ConfigError> {
        self.database.validate(&format!("{key}.database"))?;
        self.data_key_bytes(key)?;
        let positive = |value: u64, name: &str| {
            if value == 0 {
                Err(ConfigError::invalid(&format!("{key}.{name}"), "must be positive"))
            } else {
                Ok(())
            }
        };
        positive(self.tokens.access_ttl_secs, "tokens.access_ttl_secs")?;
        positive(self.tokens.refresh_ttl_secs, "tokens.refresh_ttl_secs")?;
        positive(self.verification.code_ttl_secs, "verification.code_ttl_secs")?;
        positive(self.verification.max_attempts.into(), "verification.max_attempts")?;
        positive(self.login.base_delay_secs, "login.base_delay_secs")?;
        positive(self.login.account_ceiling.into(), "login.account_ceiling")?;
        positive(self.login.window_secs, "login.window_secs")?;
        if self.login.max_delay_secs < self.login.base_delay_secs {
            return Err(ConfigError::invalid(
                &format!("{key}.login.max_delay_secs"),
                "must be at least login.base_delay_secs",
            ));
        }
        positive(self.mail.max_attempts.into(), "mail.max_attempts")?;
        if self.password_hashing.memory_kib < 1024 {
            return Err(ConfigError::invalid(&format!("{key}.password_hashing.memory_kib"), "must be at least 1024"));
        }
        let transport = self.mail.transport.expose_secret();
        if transport != DEV_MAILBOX && !transport.starts_with("smtp://") && !transport.starts_with("smtps://") {
            return Err(ConfigError::invalid(
                &format!("{key}.mail.transport"),
                "must be smtp://…, smtps://… or dev-mailbox",
            ));
        }
        if self.mail.from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(ConfigError::invalid(
                &format!("{key}.mail.from"),
                "is not a mailbox like `Shop <no-reply@example.com>`",
            ));
        }
        Ok(())
    }
}

impl UserSettings {
    pub fn data_key_bytes(&self, key: &str) -> Result<[u8; 32], ConfigError> {
        STANDARD
            .decode(self.data_key.expose_secret().trim())
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| {
                ConfigError::invalid(
                    &format!("{key}.data_key"),
                    "must be base64 of exactly 32 bytes (`openssl rand -base64 32`)",
                )
            })
    }

    pub fn access_ttl(&self) -> Duration {
        Duration::from_secs(self.tokens.access_ttl_secs)
    }
}

/// Everything the standalone `goodsmall-user` process reads: it signs access tokens
/// (the private key) and needs no event bus.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    #[serde(default)]
    pub http: HttpSettings,
    #[serde(default)]
    pub log: goodsmall_platform::telemetry::LogSettings,
    pub redis: RedisSettings,
    pub auth: goodsmall_platform::auth::KeySettings,
    pub user: UserSettings,
}

impl Settings for ServiceConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        self.http.validate()?;
        self.redis.validate("redis")?;
        self.user.validate("user")?;
        self.auth.private_key("auth")?;
        self.auth.public_key("auth").map(drop)
    }
}

#[cfg(test)]
mod tests {
    use goodsmall_platform::configuration::testing;

    use super::*;

    const DATA_KEY: &str = "c2VjcmV0LWRhdGEta2V5LTMyLWJ5dGVzLWxvbmctMDE="; // 32 bytes

    fn env(extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let keys = goodsmall_platform::auth::KeyPair::generate();
        let mut vars = testing::vars(&[
            ("GOODSMALL_REDIS__URL", "redis://127.0.0.1:6379"),
            ("GOODSMALL_AUTH__PUBLIC_KEY_PEM", &keys.public_pem),
            ("GOODSMALL_AUTH__PRIVATE_KEY_PEM", &keys.private_pem),
            ("GOODSMALL_USER__DATABASE__URL", "mysql://root@127.0.0.1/user"),
            ("GOODSMALL_USER__DATA_KEY", DATA_KEY),
        ]);
        vars.extend(testing::vars(extra));
        vars
    }

    #[test]
    fn an_unknown_or_misspelt_variable_stops_it_naming_the_variable() {
        ServiceConfig::load_from(None, env(&[("GOODSMALL_USER__LOGIN__FREE_FAILURES", "3")])).unwrap();
        // The create-account command's password is not a setting.
        let valid = env(&[("GOODSMALL_NEW_ACCOUNT_PASSWORD", "correct-horse-1")]);
        let unknown = [
            "GOODSMALL_USER__DATAKEY",
            "GOODSMALL_USER__MAIL__TRANSPORTS",
            "GOODSMALL_USER__BOOTSTRAP_ADMIN__PASS",
            "GOODSMALL_USR__DATA_KEY",
            "GOODSMALL_KAFKA__BROKERS",
        ];
        testing::assert_unknown_variables_named::<ServiceConfig>(valid, &unknown);
    }

    #[test]
    fn credentials_never_show_in_debug_output() {
        let vars = env(&[
            ("GOODSMALL_USER__DATABASE__URL", "mysql://user:user-db-secret@db:3306/user"),
            ("GOODSMALL_USER__MAIL__TRANSPORT", "smtps://mailer:smtp-secret@smtp.example.com:465"),
            ("GOODSMALL_USER__BOOTSTRAP_ADMIN__EMAIL", "admin@example.com"),
            ("GOODSMALL_USER__BOOTSTRAP_ADMIN__PASSWORD", "admin-secret-1"),
        ]);
        let private_key =
            vars.iter().find(|(k, _)| k == "GOODSMALL_AUTH__PRIVATE_KEY_PEM").map(|(_, pem)| pem.clone()).unwrap();
        let key_body = private_key.lines().nth(1).unwrap();
        let config: ServiceConfig = testing::assert_secrets_hidden(
            vars,
            &["user-db-secret", "smtp-secret", "admin-secret-1", DATA_KEY, key_body],
        );
        assert_eq!(config.auth.private_key_pem.as_ref().unwrap().expose_secret(), private_key);
        assert!(format!("{config:?} {config:#?}").contains("admin@example.com"));
        assert_eq!(config.user.data_key_bytes("user").unwrap().len(), 32);
    }
}
