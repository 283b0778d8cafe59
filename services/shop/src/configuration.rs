//! Settings of the one-process shop. Everything has a default that needs no external
//! server: SQLite files, keys and the data key in the data folder (`.goodsmall/`,
//! or `GOODSMALL_DATA_DIR`), an in-process key-value store, the dev mailbox. Setting
//! `redis.url` and the `*.database.url`s runs the same process on Redis and MySQL.

use std::path::{Path, PathBuf};

use base64::{engine::general_purpose::STANDARD, Engine};
use goodsmall_order::configuration::OrderSettings;
use goodsmall_payment::configuration::PaymentSettings;
use goodsmall_platform::{
    auth::{KeyPair, KeySettings},
    configuration::{self, ConfigError, DatabaseSettings, HttpSettings, RedisSettings, Section, Settings},
    events::KafkaSettings,
    secret_file,
    telemetry::LogSettings,
};
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
    /// Absent keys are generated once into the data folder (and read from it after).
    #[serde(default)]
    pub auth: KeySettings,
    pub user: UserSettings,
    pub product: ProductSettings,
    pub order: OrderSettings,
    pub payment: PaymentSettings,
    /// The FlashSale operator's own store (its manifests; in a cluster the Kubernetes
    /// API keeps them).
    pub operator: LocalOperatorSettings,
    /// Seed the demo merchant and demo goods (idempotent).
    #[serde(default = "yes")]
    pub demo: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalOperatorSettings {
    pub database: DatabaseSettings,
}

fn yes() -> bool {
    true
}

/// Loaded from `GOODSMALL_*` variables and `GOODSMALL_CONFIG`, under defaults that
/// point into the data folder.
impl Settings for ShopConfig {
    fn load_from(file: Option<String>, env: Vec<(String, String)>) -> Result<Self, ConfigError> {
        let data_dir = env
            .iter()
            .find(|(k, _)| k == "GOODSMALL_DATA_DIR")
            .map_or_else(|| PathBuf::from(".goodsmall"), |(_, v)| PathBuf::from(v));
        let mut defaults = vec![
            ("data_dir", data_dir.display().to_string()),
            ("user.database.url", sqlite_url(&data_dir, "user.db")),
            ("product.database.url", sqlite_url(&data_dir, "product.db")),
            ("order.database.url", sqlite_url(&data_dir, "order.db")),
            ("payment.database.url", sqlite_url(&data_dir, "payment.db")),
            ("operator.database.url", sqlite_url(&data_dir, "operator.db")),
        ];
        // A key given in the environment makes the data folder's key file irrelevant.
        if !env.iter().any(|(k, _)| k == "GOODSMALL_USER__DATA_KEY") {
            defaults.push(("user.data_key", data_key(&data_dir)?));
        }
        let mut config: Self = configuration::load_from_with_defaults(file, env, &defaults)?;
        if config.auth.private_key_pem.is_none() && config.auth.public_key_pem.is_none() {
            // Read here, not at start: an exposed key file stops the shop as a bad setting does.
            let pair = KeyPair::load_or_generate(&config.data_dir)?;
            config.auth.private_key_pem = Some(pair.private_pem.into());
            config.auth.public_key_pem = Some(pair.public_pem);
        }
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
        if self.order.product_api_url.is_some() {
            return Err(ConfigError::invalid(
                "order.product_api_url",
                "is for the separate order service; the one-process shop looks products up in-process (remove it)",
            ));
        }
        self.payment.validate("payment")?;
        self.operator.database.validate("operator.database")?;
        self.auth.private_key("auth")?;
        self.auth.public_key("auth")?;
        Ok(())
    }
}

fn sqlite_url(dir: &Path, file: &str) -> String {
    format!("sqlite://{}", dir.join(file).display())
}

/// The personal-data key of the one-process default, made once (readable by its owner
/// only) and kept; a key file others may read stops the shop, naming the file.
fn data_key(dir: &Path) -> Result<String, ConfigError> {
    let path = dir.join("data.key");
    if let Some(existing) = secret_file::read(&path)? {
        return Ok(existing.trim().to_owned());
    }
    secret_file::create_private_dir(dir)?;
    let mut key = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut key);
    let encoded = STANDARD.encode(key);
    secret_file::write(&path, &encoded)?;
    Ok(encoded)
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use goodsmall_platform::configuration::{testing, ExposeSecret};

    use super::*;

    fn dir() -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("goodsmall-shopcfg-{}-{}", std::process::id(), rand::random::<u32>()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn vars(dir: &Path, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut env = testing::vars(&[("GOODSMALL_DATA_DIR", &dir.display().to_string())]);
        env.extend(testing::vars(extra));
        env
    }

    fn load(dir: &Path, extra: &[(&str, &str)]) -> Result<ShopConfig, ConfigError> {
        ShopConfig::load_from(None, vars(dir, extra))
    }

    #[test]
    fn the_data_key_is_made_private_and_an_exposed_one_stops_the_shop() {
        let dir = dir();
        let first = load(&dir, &[]).unwrap();
        let key = dir.join("data.key");
        assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(
            load(&dir, &[]).unwrap().user.data_key.expose_secret(),
            first.user.data_key.expose_secret(),
            "kept across starts"
        );
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = load(&dir, &[]).unwrap_err().to_string();
        assert!(err.contains(&key.display().to_string()) && err.contains("chmod 600"), "{err}");
        // A key given in the environment does not read the file at all.
        let given = STANDARD.encode([9u8; 32]);
        assert_eq!(load(&dir, &[("GOODSMALL_USER__DATA_KEY", &given)]).unwrap().user.data_key.expose_secret(), given);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn an_unknown_variable_is_named_and_secrets_are_not_printed() {
        let dir = dir();
        testing::assert_unknown_variables_named::<ShopConfig>(vars(&dir, &[]), &["GOODSMALL_USER__DATAKEY"]);
        let secret = ("GOODSMALL_ORDER__DATABASE__URL", "mysql://shop:shop-db-secret@db/order");
        let config: ShopConfig = testing::assert_secrets_hidden(vars(&dir, &[secret]), &["shop-db-secret"]);
        let printed = format!("{config:?}");
        assert!(!printed.contains(config.user.data_key.expose_secret()), "{printed}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn the_product_service_url_is_refused_in_one_process() {
        let dir = dir();
        let err = load(&dir, &[("GOODSMALL_ORDER__PRODUCT_API_URL", "http://product:8080")]).unwrap_err().to_string();
        assert!(err.contains("GOODSMALL_ORDER__PRODUCT_API_URL") && err.contains("in-process"), "{err}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
