//! Typed configuration: an optional TOML file (`GOODSMALL_CONFIG=path`) overlaid by
//! environment variables (`GOODSMALL_HTTP__PORT=8081` sets `http.port`).
//!
//! Every binary defines its own top-level settings struct from the sections below
//! plus its own, loads it with [`load`], and then calls `validate` so that a wrong or
//! missing value stops the process with a message naming the setting.

use std::time::Duration;

use serde::{de::DeserializeOwned, Deserialize};

use crate::http::TrustedProxies;

pub const ENV_PREFIX: &str = "GOODSMALL";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0} (settings come from GOODSMALL_CONFIG=<file.toml> and GOODSMALL_<SECTION>__<KEY> environment variables)")]
    Load(#[from] config::ConfigError),
    #[error("configuration: {setting} {problem}")]
    Invalid { setting: String, problem: String },
    /// A key file of the data folder cannot be used (e.g. others may read it).
    #[error("configuration: {0}")]
    SecretFile(#[from] crate::secret_file::SecretFileError),
}

impl ConfigError {
    /// `section.key` → the environment variable that sets it, for messages.
    pub fn invalid(key: &str, problem: impl Into<String>) -> Self {
        let env = format!("{ENV_PREFIX}_{}", key.replace('.', "__").to_uppercase());
        Self::Invalid { setting: format!("`{key}` ({env})"), problem: problem.into() }
    }
}

/// Loads `T` from the optional config file and the environment.
pub fn load<T: DeserializeOwned>() -> Result<T, ConfigError> {
    load_from(std::env::var("GOODSMALL_CONFIG").ok(), std::env::vars())
}

/// As [`load`], under the given `(key, value)` defaults (e.g. paths in a data folder).
pub fn load_with_defaults<T: DeserializeOwned>(defaults: &[(&str, String)]) -> Result<T, ConfigError> {
    load_from_with_defaults(std::env::var("GOODSMALL_CONFIG").ok(), std::env::vars(), defaults)
}

/// As [`load`], with the file and environment given explicitly (for tests).
pub fn load_from<T: DeserializeOwned>(
    file: Option<String>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<T, ConfigError> {
    load_from_with_defaults(file, env, &[])
}

pub fn load_from_with_defaults<T: DeserializeOwned>(
    file: Option<String>,
    env: impl IntoIterator<Item = (String, String)>,
    defaults: &[(&str, String)],
) -> Result<T, ConfigError> {
    let mut builder = config::Config::builder();
    for (key, value) in defaults {
        builder = builder.set_default(*key, value.as_str())?;
    }
    if let Some(path) = file {
        builder = builder.add_source(config::File::with_name(&path).required(true));
    }
    let env: config::Map<String, String> = env.into_iter().collect();
    builder = builder.add_source(
        config::Environment::with_prefix(ENV_PREFIX)
            .prefix_separator("_")
            .separator("__")
            .try_parsing(true)
            .source(Some(env)),
    );
    Ok(builder.build()?.try_deserialize()?)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    pub host: String,
    pub port: u16,
    /// Largest request body accepted; larger ones get `413 PAYLOAD_TOO_LARGE`.
    pub body_limit_bytes: usize,
    pub request_timeout_secs: u64,
    /// New connections the kernel queues until the server accepts them (listen(2)'s
    /// backlog). A drop's opening is a burst of new connections; beyond the queue they
    /// are dropped and the client retries a second later. The kernel caps it at
    /// `net.core.somaxconn`.
    pub backlog: u32,
    /// Proxies whose `X-Forwarded-For` names the client (addresses or CIDR ranges);
    /// none by default, so the client address is the connection's peer.
    pub trusted_proxies: TrustedProxies,
}

/// Largest `http.backlog` accepted (Linux's own ceiling for `net.core.somaxconn` was
/// 65535 for long; a larger queue only hides an overloaded server).
pub const MAX_BACKLOG: u32 = 65_535;

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 8080,
            body_limit_bytes: 64 * 1024,
            request_timeout_secs: 30,
            backlog: 4096,
            trusted_proxies: TrustedProxies::default(),
        }
    }
}

impl HttpSettings {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.body_limit_bytes < 1024 {
            return Err(ConfigError::invalid("http.body_limit_bytes", "must be at least 1024"));
        }
        if self.request_timeout_secs == 0 {
            return Err(ConfigError::invalid("http.request_timeout_secs", "must be positive"));
        }
        if !(1..=MAX_BACKLOG).contains(&self.backlog) {
            return Err(ConfigError::invalid("http.backlog", format!("must be between 1 and {MAX_BACKLOG}")));
        }
        Ok(())
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `mysql://user:pass@host:3306/db` or `sqlite://path/file.db`.
    pub url: String,
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    /// Create the database (MySQL schema or SQLite file) when it does not exist yet.
    #[serde(default = "default_true")]
    pub create_if_missing: bool,
}

fn default_max_connections() -> u32 {
    10
}
fn default_true() -> bool {
    true
}

impl DatabaseSettings {
    pub fn sqlite(path: &std::path::Path) -> Self {
        Self { url: format!("sqlite://{}", path.display()), max_connections: 5, create_if_missing: true }
    }

    pub fn validate(&self, key: &str) -> Result<(), ConfigError> {
        if !(self.url.starts_with("mysql://") || self.url.starts_with("mariadb://") || self.url.starts_with("sqlite:")) {
            return Err(ConfigError::invalid(&format!("{key}.url"), "must start with mysql:// or sqlite://"));
        }
        if self.max_connections == 0 {
            return Err(ConfigError::invalid(&format!("{key}.max_connections"), "must be at least 1"));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSettings {
    /// `redis://host:6379/0`.
    pub url: String,
}

impl RedisSettings {
    pub fn validate(&self, key: &str) -> Result<(), ConfigError> {
        redis::Client::open(self.url.as_str())
            .map(|_| ())
            .map_err(|e| ConfigError::invalid(&format!("{key}.url"), format!("is not a Redis URL: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Sample {
        #[serde(default)]
        http: HttpSettings,
        database: DatabaseSettings,
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn environment_overrides_defaults() {
        let s: Sample = load_from(
            None,
            env(&[("GOODSMALL_HTTP__PORT", "9000"), ("GOODSMALL_DATABASE__URL", "sqlite://x.db")]),
        )
        .unwrap();
        assert_eq!(s.http.port, 9000);
        assert_eq!(s.http.body_limit_bytes, 64 * 1024);
        assert_eq!(s.database.url, "sqlite://x.db");
    }

    #[test]
    fn missing_required_value_names_the_setting() {
        let err = load_from::<Sample>(None, env(&[])).unwrap_err().to_string();
        assert!(err.contains("database"), "{err}");
    }

    #[test]
    fn wrong_type_names_the_setting() {
        let err = load_from::<Sample>(
            None,
            env(&[("GOODSMALL_HTTP__PORT", "eighty"), ("GOODSMALL_DATABASE__URL", "sqlite://x.db")]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("http.port"), "{err}");
    }

    #[test]
    fn the_listen_backlog_is_large_by_default_and_checked() {
        let load = |pairs: &[(&str, &str)]| {
            let mut vars = env(&[("GOODSMALL_DATABASE__URL", "sqlite://x.db")]);
            vars.extend(env(pairs));
            load_from::<Sample>(None, vars).map(|s| s.http)
        };
        assert_eq!(load(&[]).unwrap().backlog, 4096);
        assert_eq!(load(&[("GOODSMALL_HTTP__BACKLOG", "16384")]).unwrap().backlog, 16384);
        for bad in ["0", "65536"] {
            let http = load(&[("GOODSMALL_HTTP__BACKLOG", bad)]).unwrap();
            let err = http.validate().unwrap_err().to_string();
            assert!(err.contains("GOODSMALL_HTTP__BACKLOG") && err.contains("between 1 and 65535"), "{bad}: {err}");
        }
        let err = load(&[("GOODSMALL_HTTP__BACKLOG", "many")]).unwrap_err().to_string();
        assert!(err.contains("http.backlog"), "{err}");
    }

    #[test]
    fn trusted_proxies_are_typed_ranges() {
        let mut vars = env(&[("GOODSMALL_DATABASE__URL", "sqlite://x.db")]);
        vars.extend(env(&[("GOODSMALL_HTTP__TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.1")]));
        let http = load_from::<Sample>(None, vars).unwrap().http;
        assert!(http.trusted_proxies.contains("10.20.30.40".parse().unwrap()));
        assert!(!http.trusted_proxies.contains("192.0.2.2".parse().unwrap()));
        let mut vars = env(&[("GOODSMALL_DATABASE__URL", "sqlite://x.db")]);
        vars.extend(env(&[("GOODSMALL_HTTP__TRUSTED_PROXIES", "10.0.0.0/99")]));
        let err = load_from::<Sample>(None, vars).unwrap_err().to_string();
        assert!(err.contains("http.trusted_proxies") && err.contains("10.0.0.0/99"), "{err}");
        assert_eq!(HttpSettings::default().trusted_proxies, TrustedProxies::default(), "none trusted by default");
    }

    #[test]
    fn invalid_value_names_the_environment_variable() {
        let db = DatabaseSettings { url: "postgres://x".into(), max_connections: 1, create_if_missing: true };
        let err = db.validate("user.database").unwrap_err().to_string();
        assert!(err.contains("GOODSMALL_USER__DATABASE__URL"), "{err}");
    }
}
