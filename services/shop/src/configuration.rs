//! Settings of the one-process shop. Everything has a default that needs no external
//! server: SQLite files, keys and the data key in the data folder (`.goodsmall/`,
//! or `GOODSMALL_DATA_DIR`), an in-process key-value store, the dev mailbox. Setting
//! `redis.url` and the `*.database.url`s runs the same process on Redis and MySQL.

use std::path::{Path, PathBuf};

use base64::{engine::general_purpose::STANDARD, Engine};
use goodsmall_platform::{
    auth::KeySettings,
    configuration::{self, ConfigError, HttpSettings, RedisSettings},
    events::KafkaSettings,
    telemetry::LogSettings,
};
use goodsmall_order::configuration::OrderSettings;
use goodsmall_payment::configuration::PaymentSettings;
use goodsmall_product::configuration::ProductSettings;
use goodsmall_user::configuration::UserSettings;
use rand::RngCore;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShopConfig {
    #[serde(default)]
    pub http: HttpSettings,
    #[serde(default)]
    pub log: LogSettings,
    pub data_dir: PathBuf,
    /// Absent: the in-process store (fine for one process, lost on restart).
    #[serde(default)]
    pub redis: Option<RedisSettings>,
    /// Absent: the services talk through an in-process bus (same outbox, same consumers).
    #[serde(default)]
    pub kafka: Option<KafkaSettings>,
    /// Absent keys are generated once into the data folder.
    #[serde(default)]
    pub auth: KeySettings,
    pub user: UserSettings,
    pub product: ProductSettings,
    pub order: OrderSettings,
    pub payment: PaymentSettings,
    /// Seed the demo merchant and demo goods (idempotent).
    #[serde(default = "yes")]
    pub demo: bool,
}

fn yes() -> bool {
    true
}

impl ShopConfig {
    /// Loads from `GOODSMALL_*` variables and `GOODSMALL_CONFIG`, under defaults that
    /// point into the data folder.
    pub fn load() -> Result<Self, ConfigError> {
        Self::load_from(std::env::var("GOODSMALL_CONFIG").ok(), std::env::vars().collect())
    }

    pub fn load_from(file: Option<String>, env: Vec<(String, String)>) -> Result<Self, ConfigError> {
        let data_dir = env
            .iter()
            .find(|(k, _)| k == "GOODSMALL_DATA_DIR")
            .map_or_else(|| PathBuf::from(".goodsmall"), |(_, v)| PathBuf::from(v));
        let data_key = data_key(&data_dir).map_err(|e| ConfigError::invalid("data_dir", format!("is not writable: {e}")))?;
        let defaults = [
            ("data_dir", data_dir.display().to_string()),
            ("user.database.url", sqlite_url(&data_dir, "user.db")),
            ("user.data_key", data_key),
            ("product.database.url", sqlite_url(&data_dir, "product.db")),
            ("order.database.url", sqlite_url(&data_dir, "order.db")),
            ("payment.database.url", sqlite_url(&data_dir, "payment.db")),
        ];
        let config: Self = configuration::load_from_with_defaults(file, env, &defaults)?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.http.validate()?;
        if let Some(redis) = &self.redis {
            redis.validate("redis")?;
        }
        if let Some(kafka) = &self.kafka {
            kafka.validate("kafka")?;
        }
        self.user.validate("user")?;
        self.product.validate("product")?;
        self.order.validate("order")?;
        self.payment.validate("payment")?;
        if self.auth.private_key_pem.is_some() || self.auth.public_key_pem.is_some() {
            self.auth.private_key("auth")?;
            self.auth.public_key("auth")?;
        }
        Ok(())
    }
}

fn sqlite_url(dir: &Path, file: &str) -> String {
    format!("sqlite://{}", dir.join(file).display())
}

/// The personal-data key of the one-process default, made once and kept.
fn data_key(dir: &Path) -> std::io::Result<String> {
    let path = dir.join("data.key");
    if let Ok(existing) = std::fs::read_to_string(&path) {
        return Ok(existing.trim().to_owned());
    }
    std::fs::create_dir_all(dir)?;
    let mut key = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut key);
    let encoded = STANDARD.encode(key);
    std::fs::write(&path, &encoded)?;
    Ok(encoded)
}
