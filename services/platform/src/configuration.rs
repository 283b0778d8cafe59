//! Typed configuration: an optional TOML file (`GOODSMALL_CONFIG=path`) overlaid by
//! environment variables (`GOODSMALL_HTTP__PORT=8081` sets `http.port`).
//!
//! Every binary's top-level settings struct is made of the sections below plus its
//! service's own [`Section`]s, and is [`Settings`]: loaded from the file and the
//! environment and then checked, so that a wrong or missing value stops the process
//! with a message naming the setting. The separate product, order and payment services
//! declare theirs with [`service_config!`](crate::service_config).

use std::time::Duration;

use serde::{de::DeserializeOwned, Deserialize};

use crate::http::TrustedProxies;

/// Credentials in settings (database URLs, private keys, the data key, the SMTP
/// password) are [`SecretString`]s: their `Debug` is `[REDACTED]`, so a logged or
/// printed config never shows them; `.expose_secret()` is the one way to read one.
pub use secrecy::{ExposeSecret, SecretString};

pub const ENV_PREFIX: &str = "GOODSMALL";

/// `GOODSMALL_*` variables that are not settings: the config file's path, the
/// inputs of the binaries' commands (`goodsmall-user create-account`'s password, the
/// `goodsmall flashsale` client's URL and credentials), and the variables the scripts
/// document for the developer's shell (`scripts/*.sh`: their cache, the node's state
/// and binaries, bench.sh's binaries), so that a shell which set them, or ran
/// `eval "$(scripts/cluster.sh env)"`, still starts every service. Every other
/// `GOODSMALL_*` variable must name a setting.
pub const NOT_SETTINGS: &[&str] = &[
    "GOODSMALL_CONFIG",
    "GOODSMALL_NEW_ACCOUNT_PASSWORD",
    "GOODSMALL_URL",
    "GOODSMALL_TOKEN",
    "GOODSMALL_EMAIL",
    "GOODSMALL_PASSWORD",
    "GOODSMALL_CACHE",
    "GOODSMALL_CLUSTER_DIR",
    "GOODSMALL_CLUSTER_BIN",
    "GOODSMALL_NODE_IP",
    "GOODSMALL_BIN",
    "GOODSMALL_BENCH_BIN",
];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "configuration: {0} (settings come from GOODSMALL_CONFIG=<file.toml> and GOODSMALL_<SECTION>__<KEY> \
        environment variables)"
    )]
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

/// A process's settings: deserialized (unknown settings denied), then checked.
pub trait Settings: DeserializeOwned {
    /// What deserializing cannot check, naming the setting (and its variable) at fault.
    fn validate(&self) -> Result<(), ConfigError>;

    /// The settings from `GOODSMALL_CONFIG` and the environment: what the binary loads at
    /// start.
    fn load() -> Result<Self, ConfigError> {
        Self::load_from(std::env::var("GOODSMALL_CONFIG").ok(), std::env::vars().collect())
    }

    /// As [`Settings::load`], from the given file and variables.
    fn load_from(file: Option<String>, env: Vec<(String, String)>) -> Result<Self, ConfigError> {
        let settings: Self = load_from(file, env)?;
        settings.validate()?;
        Ok(settings)
    }
}

/// A service's own section (`order`, set by `GOODSMALL_ORDER__*`): its rules, for the
/// one-process shop and the service's separate process.
pub trait Section {
    /// Checks the values, naming each setting under `key` (`order.group_commits`).
    fn validate(&self, key: &str) -> Result<(), ConfigError>;

    /// As the service's separate process needs it: [`Section::validate`], plus what
    /// only that process needs (default: nothing more).
    fn validate_separate(&self, key: &str) -> Result<(), ConfigError> {
        self.validate(key)
    }
}

/// The settings of a separate saga service (product, order, payment): `http`, `log`,
/// `redis`, `auth` (the public key: it verifies access tokens), `kafka` (the event bus
/// between the services) and its own section, any other `GOODSMALL_*` variable
/// stopping it, named. Declares `ServiceConfig`, [`Settings`] (the platform's sections
/// checked, and the section's [`Section::validate_separate`]) and
/// [`StandaloneConfig`](crate::service::StandaloneConfig) for it.
///
/// ```ignore
/// goodsmall_platform::service_config!(
///     /// Everything the standalone `goodsmall-order` process reads.
///     order: OrderSettings
/// );
/// ```
#[macro_export]
macro_rules! service_config {
    ($(#[$meta:meta])* $section:ident: $settings:ty) => {
        $(#[$meta])*
        #[derive(Debug, Clone, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct ServiceConfig {
            #[serde(default)]
            pub http: $crate::configuration::HttpSettings,
            #[serde(default)]
            pub log: $crate::telemetry::LogSettings,
            pub redis: $crate::configuration::RedisSettings,
            #[serde(default)]
            pub auth: $crate::auth::KeySettings,
            pub kafka: $crate::events::KafkaSettings,
            pub $section: $settings,
        }

        impl $crate::configuration::Settings for ServiceConfig {
            fn validate(&self) -> Result<(), $crate::configuration::ConfigError> {
                self.http.validate()?;
                self.redis.validate("redis")?;
                $crate::configuration::Section::validate_separate(&self.$section, stringify!($section))?;
                self.auth.public_key("auth")?;
                self.kafka.validate("kafka")
            }
        }

        impl $crate::service::StandaloneConfig for ServiceConfig {
            fn log(&self) -> &$crate::telemetry::LogSettings {
                &self.log
            }
            fn kafka(&self) -> &$crate::events::KafkaSettings {
                &self.kafka
            }
        }
    };
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
    let env: config::Map<String, String> = env.into_iter().filter(|(name, value)| is_setting(name, value)).collect();
    let names: Vec<String> = env.keys().cloned().collect();
    builder = builder.add_source(
        config::Environment::with_prefix(ENV_PREFIX)
            .prefix_separator("_")
            .separator("__")
            .try_parsing(true)
            .source(Some(env)),
    );
    builder.build()?.try_deserialize().map_err(|e| name_unknown_setting(e, &names))
}

/// Whether a variable is read as a setting. Only `GOODSMALL_*` ones are, except
/// [`NOT_SETTINGS`] and the variables Kubernetes adds to every pod for each Service
/// of its namespace (`GOODSMALL_ORDER_SERVICE_HOST`, `GOODSMALL_ORDER_PORT=tcp://…`
/// for a Service named `goodsmall-order`), which would otherwise stop every service in
/// a cluster as unknown settings. A misspelt setting is not mistaken for one: settings
/// are `GOODSMALL_<SECTION>__<KEY>` (with `__`), and a `…_PORT` link holds a `tcp://` URL.
fn is_setting(name: &str, value: &str) -> bool {
    let name = name.to_ascii_uppercase();
    // Not ours: the config crate skips it anyway.
    let Some(rest) = name.strip_prefix(ENV_PREFIX).and_then(|r| r.strip_prefix('_')) else { return true };
    !NOT_SETTINGS.contains(&name.as_str()) && !is_service_link(rest, value)
}

fn is_service_link(name: &str, value: &str) -> bool {
    if name.contains("__") {
        return false;
    }
    let name = format!("_{name}");
    if name.ends_with("_SERVICE_HOST") || name.ends_with("_SERVICE_PORT") || name.contains("_SERVICE_PORT_") {
        return true;
    }
    let link_url = ["tcp://", "udp://", "sctp://"].iter().any(|scheme| value.starts_with(scheme));
    // <SERVICE>_PORT_<port>_<PROTOCOL>[_PROTO|_PORT|_ADDR]
    if let Some(at) = name.rfind("_PORT_") {
        let mut parts = name[at + "_PORT_".len()..].split('_');
        let port = parts.next().is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        let protocol = parts.next().is_some_and(|p| ["TCP", "UDP", "SCTP"].contains(&p));
        let field = match (parts.next(), parts.next()) {
            (None, _) => link_url,
            (Some(field), None) => ["PROTO", "PORT", "ADDR"].contains(&field),
            _ => false,
        };
        if port && protocol {
            return field;
        }
    }
    // <SERVICE>_PORT=tcp://…
    name.ends_with("_PORT") && link_url
}

/// serde's "unknown field `foo`" under the config crate's key `order` becomes
/// "`order.foo` (GOODSMALL_ORDER__FOO) is not a setting", naming the variable to fix
/// (the variables, for an unknown section: `shop` (GOODSMALL_SHOP__HOST)).
fn name_unknown_setting(error: config::ConfigError, variables: &[String]) -> ConfigError {
    let (message, parent) = match &error {
        config::ConfigError::At { error, key, .. } => (error.to_string(), key.clone()),
        other => (other.to_string(), None),
    };
    let Some(rest) = message.strip_prefix("unknown field `") else { return error.into() };
    let Some((field, expected)) = rest.split_once('`') else { return error.into() };
    let setting = match parent {
        Some(parent) if !parent.is_empty() => format!("{parent}.{field}"),
        _ => field.to_owned(),
    };
    let expected = expected.trim_start_matches(',').trim();
    let problem = format!("is not a setting (misspelt?); {expected}");
    let key_of = |name: &str| name.to_ascii_lowercase().split_once('_').map(|(_, key)| key.replace("__", "."));
    let given: Vec<&str> = variables
        .iter()
        .filter(|name| key_of(name).is_some_and(|key| key == setting || key.starts_with(&format!("{setting}."))))
        .map(String::as_str)
        .collect();
    if given.is_empty() {
        // From the config file: the variable that would set it.
        return ConfigError::invalid(&setting, problem);
    }
    ConfigError::Invalid { setting: format!("`{setting}` ({})", given.join(", ")), problem }
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
    /// `mysql://user:pass@host:3306/db` or `sqlite://path/file.db` (a secret: it may
    /// hold the password).
    pub url: SecretString,
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
        Self { url: format!("sqlite://{}", path.display()).into(), max_connections: 5, create_if_missing: true }
    }

    pub fn validate(&self, key: &str) -> Result<(), ConfigError> {
        let url = self.url.expose_secret();
        if !(url.starts_with("mysql://") || url.starts_with("mariadb://") || url.starts_with("sqlite:")) {
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
    /// `redis://host:6379/0`, or `redis://:password@host:6379/0` (a secret).
    pub url: SecretString,
}

impl RedisSettings {
    pub fn validate(&self, key: &str) -> Result<(), ConfigError> {
        redis::Client::open(self.url.expose_secret())
            .map(|_| ())
            .map_err(|e| ConfigError::invalid(&format!("{key}.url"), format!("is not a Redis URL: {e}")))
    }
}

/// What every process's settings tests check, for their own variables.
pub mod testing {
    use super::{ConfigError, Settings};

    /// `(name, value)` pairs as the variables of a process.
    pub fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// Valid variables of a separate saga service whose section is `section`
    /// (`ORDER`): Redis, a fresh public key, Kafka and its database; then `extra`.
    pub fn standalone_vars(section: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let keys = crate::auth::KeyPair::generate();
        let mut vars = vars(&[
            ("GOODSMALL_REDIS__URL", "redis://127.0.0.1:6379"),
            ("GOODSMALL_AUTH__PUBLIC_KEY_PEM", &keys.public_pem),
            ("GOODSMALL_KAFKA__BROKERS", "127.0.0.1:9092"),
            (
                &format!("GOODSMALL_{section}__DATABASE__URL"),
                &format!("mysql://root@127.0.0.1/{}", section.to_lowercase()),
            ),
        ]);
        vars.extend(self::vars(extra));
        vars
    }

    /// `valid` loads; with any one of `unknown` added it does not, and the message
    /// names that variable as no setting.
    pub fn assert_unknown_variables_named<S: Settings>(valid: Vec<(String, String)>, unknown: &[&str]) {
        S::load_from(None, valid.clone()).map(drop).unwrap_or_else(|e| panic!("the valid variables do not load: {e}"));
        for name in unknown {
            let mut vars = valid.clone();
            vars.push((name.to_string(), "1".to_owned()));
            let err = S::load_from(None, vars).map(drop).unwrap_err().to_string();
            assert!(err.contains(name) && err.contains("is not a setting"), "{name}: {err}");
        }
    }

    /// The settings `vars` load to; neither their `{:?}` nor their `{:#?}` shows any of
    /// `secrets`, and both say `REDACTED` where credentials are.
    pub fn assert_secrets_hidden<S: Settings + std::fmt::Debug>(vars: Vec<(String, String)>, secrets: &[&str]) -> S {
        let settings = S::load_from(None, vars).unwrap_or_else(|e: ConfigError| panic!("{e}"));
        let printed = format!("{settings:?} {settings:#?}");
        for secret in secrets {
            assert!(!printed.contains(secret), "{secret} in {printed}");
        }
        assert!(printed.contains("REDACTED"), "{printed}");
        settings
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

    use testing::vars as env;

    #[test]
    fn environment_overrides_defaults() {
        let s: Sample =
            load_from(None, env(&[("GOODSMALL_HTTP__PORT", "9000"), ("GOODSMALL_DATABASE__URL", "sqlite://x.db")]))
                .unwrap();
        assert_eq!(s.http.port, 9000);
        assert_eq!(s.http.body_limit_bytes, 64 * 1024);
        assert_eq!(s.database.url.expose_secret(), "sqlite://x.db");
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

    /// A top-level struct as the binaries have: every field known.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Strict {
        #[serde(default)]
        http: HttpSettings,
        database: DatabaseSettings,
        redis: Option<RedisSettings>,
    }

    #[test]
    fn an_unknown_or_misspelt_variable_is_named() {
        let load = |pairs: &[(&str, &str)]| {
            let mut vars = env(&[("GOODSMALL_DATABASE__URL", "sqlite://x.db")]);
            vars.extend(env(pairs));
            load_from::<Strict>(None, vars).map(|_| ()).map_err(|e| e.to_string())
        };
        let err = load(&[("GOODSMALL_HTTP__PROT", "9000")]).unwrap_err();
        assert!(err.contains("`http.prot` (GOODSMALL_HTTP__PROT) is not a setting") && err.contains("`port`"), "{err}");
        let err = load(&[("GOODSMALL_DATABASE__MAX_CONNECTION", "3")]).unwrap_err();
        assert!(err.contains("GOODSMALL_DATABASE__MAX_CONNECTION"), "{err}");
        let err = load(&[("GOODSMALL_HTTP_PORT", "9000")]).unwrap_err();
        assert!(err.contains("`http_port` (GOODSMALL_HTTP_PORT) is not a setting"), "{err}");
        let err = load(&[("GOODSMALL_SHOP__HOST", "x")]).unwrap_err();
        assert!(err.contains("`shop` (GOODSMALL_SHOP__HOST) is not a setting"), "{err}");
        // The file's path and the commands' inputs are not settings.
        load(&[("GOODSMALL_NEW_ACCOUNT_PASSWORD", "pw"), ("GOODSMALL_EMAIL", "a@b.c"), ("OTHER_VARIABLE", "1")])
            .unwrap();
        let file = std::env::temp_dir().join(format!("goodsmall-config-{}.toml", std::process::id()));
        std::fs::write(&file, "[http]\nport = 9100\n").unwrap();
        let vars = env(&[("GOODSMALL_DATABASE__URL", "sqlite://x.db"), ("GOODSMALL_CONFIG", file.to_str().unwrap())]);
        let loaded = load_from::<Strict>(Some(file.display().to_string()), vars).unwrap();
        assert_eq!(loaded.http.port, 9100);
        std::fs::write(&file, "[http]\nprot = 9100\n").unwrap();
        let err =
            load_from::<Strict>(Some(file.display().to_string()), env(&[("GOODSMALL_DATABASE__URL", "sqlite://x.db")]))
                .unwrap_err()
                .to_string();
        assert!(err.contains("`http.prot`"), "{err}");
        let _ = std::fs::remove_file(file);
    }

    /// The `GOODSMALL_*` variables a script reads (`$NAME`, `${NAME…}`) or has the
    /// shell export (`export NAME=`), other than settings (`…__…`): each must be one
    /// the loader passes over, or exporting it as the script documents stops every
    /// service started from that shell.
    fn script_variables() -> std::collections::BTreeSet<String> {
        let scripts = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts");
        let mut names = std::collections::BTreeSet::new();
        let mut folders = vec![scripts];
        while let Some(folder) = folders.pop() {
            for entry in std::fs::read_dir(&folder).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    folders.push(path);
                    continue;
                }
                if path.extension().is_none_or(|e| e != "sh") {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                for (at, _) in text.match_indices("GOODSMALL_") {
                    let before = &text[..at];
                    if !(before.ends_with('$') || before.ends_with("${") || before.ends_with("export ")) {
                        continue;
                    }
                    let name: String = text[at..]
                        .chars()
                        .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                        .collect();
                    if !name.contains("__") {
                        names.insert(name);
                    }
                }
            }
        }
        names
    }

    #[test]
    fn the_scripts_variables_do_not_stop_a_service() {
        let names = script_variables();
        // The scan finds what it is meant to (the cache every fetching script reads).
        assert!(names.contains("GOODSMALL_CACHE") && names.contains("GOODSMALL_NODE_IP"), "{names:?}");
        let mut vars = env(&[("GOODSMALL_DATABASE__URL", "sqlite://x.db")]);
        vars.extend(names.iter().map(|name| (name.clone(), "/tmp/some-value".to_owned())));
        if let Err(e) = load_from::<Strict>(None, vars) {
            panic!("a shell with the scripts' variables {names:?} cannot start a service: {e}");
        }
    }

    #[test]
    fn kubernetes_service_links_are_not_settings() {
        let links = [
            ("GOODSMALL_ORDER_SERVICE_HOST", "10.96.0.12"),
            ("GOODSMALL_ORDER_SERVICE_PORT", "8080"),
            ("GOODSMALL_ORDER_SERVICE_PORT_HTTP", "8080"),
            ("GOODSMALL_ORDER_PORT", "tcp://10.96.0.12:8080"),
            ("GOODSMALL_ORDER_PORT_8080_TCP", "tcp://10.96.0.12:8080"),
            ("GOODSMALL_ORDER_PORT_8080_TCP_PROTO", "tcp"),
            ("GOODSMALL_ORDER_PORT_8080_TCP_PORT", "8080"),
            ("GOODSMALL_ORDER_PORT_8080_TCP_ADDR", "10.96.0.12"),
            ("GOODSMALL_SERVICE_HOST", "10.96.0.13"),
            ("GOODSMALL_PORT", "tcp://10.96.0.13:80"),
        ];
        let mut vars = env(&[("GOODSMALL_DATABASE__URL", "sqlite://x.db")]);
        vars.extend(env(&links));
        load_from::<Strict>(None, vars).unwrap();
        // Look-alikes that are not links stay errors.
        for (name, value) in [
            ("GOODSMALL_HTTP_PORT", "9000"),
            ("GOODSMALL_ORDER_PORT_8080_TCP_HOST", "x"),
            ("GOODSMALL_HTTP__PORT_8080_TCP", "tcp://x:1"),
        ] {
            let mut vars = env(&[("GOODSMALL_DATABASE__URL", "sqlite://x.db")]);
            vars.push((name.to_owned(), value.to_owned()));
            assert!(load_from::<Strict>(None, vars).is_err(), "{name}={value} was accepted");
        }
    }

    #[test]
    fn credentials_never_show_in_debug_output() {
        let vars = env(&[
            ("GOODSMALL_DATABASE__URL", "mysql://shop:db-pass-1@db:3306/shop"),
            ("GOODSMALL_REDIS__URL", "redis://:kv-pass-2@kv:6379/0"),
        ]);
        let loaded = load_from::<Strict>(None, vars).unwrap();
        let printed = format!("{loaded:?} {loaded:#?}");
        assert!(!printed.contains("db-pass-1") && !printed.contains("kv-pass-2"), "{printed}");
        assert!(printed.contains("REDACTED"), "{printed}");
        assert_eq!(loaded.database.url.expose_secret(), "mysql://shop:db-pass-1@db:3306/shop");
        loaded.redis.unwrap().validate("redis").unwrap();
    }

    #[test]
    fn invalid_value_names_the_environment_variable() {
        let db = DatabaseSettings { url: "postgres://x".into(), max_connections: 1, create_if_missing: true };
        let err = db.validate("user.database").unwrap_err().to_string();
        assert!(err.contains("GOODSMALL_USER__DATABASE__URL"), "{err}");
    }
}
