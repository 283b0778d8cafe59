//! The product service's own settings (section `product`).

use std::time::Duration;

use goodsmall_platform::{
    auth::KeySettings,
    events::KafkaSettings,
    configuration::{self, ConfigError, DatabaseSettings, HttpSettings, RedisSettings},
    telemetry::LogSettings,
};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductSettings {
    pub database: DatabaseSettings,
    #[serde(default)]
    pub cache: CacheSettings,
}

/// The product-detail look-aside cache.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheSettings {
    pub ttl_secs: u64,
    /// Up to this much is added to each entry's TTL so entries filled together do not
    /// all expire together.
    pub jitter_secs: u64,
    /// How long "no such product" is remembered, so probing unknown ids cannot hammer
    /// the database.
    pub missing_ttl_secs: u64,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self { ttl_secs: 300, jitter_secs: 60, missing_ttl_secs: 30 }
    }
}

impl CacheSettings {
    pub fn ttl(&self) -> Duration {
        Duration::from_secs(self.ttl_secs)
    }
    pub fn missing_ttl(&self) -> Duration {
        Duration::from_secs(self.missing_ttl_secs)
    }
}

impl ProductSettings {
    pub fn validate(&self, key: &str) -> Result<(), ConfigError> {
        self.database.validate(&format!("{key}.database"))?;
        if self.cache.ttl_secs == 0 {
            return Err(ConfigError::invalid(&format!("{key}.cache.ttl_secs"), "must be positive"));
        }
        if self.cache.missing_ttl_secs == 0 {
            return Err(ConfigError::invalid(&format!("{key}.cache.missing_ttl_secs"), "must be positive"));
        }
        Ok(())
    }
}

/// Everything the standalone `goodsmall-product` process reads (any other
/// `GOODSMALL_*` variable stops it, naming the variable). It verifies access tokens
/// with the public key only.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    #[serde(default)]
    pub http: HttpSettings,
    #[serde(default)]
    pub log: LogSettings,
    pub redis: RedisSettings,
    #[serde(default)]
    pub auth: KeySettings,
    /// The event bus between the services.
    pub kafka: KafkaSettings,
    pub product: ProductSettings,
}

impl ServiceConfig {
    pub fn load_from(file: Option<String>, env: Vec<(String, String)>) -> Result<Self, ConfigError> {
        let config: Self = configuration::load_from(file, env)?;
        config.http.validate()?;
        config.redis.validate("redis")?;
        config.product.validate("product")?;
        config.auth.public_key("auth")?;
        config.kafka.validate("kafka")?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn a_missing_or_wrong_setting_is_named() {
        let err = ServiceConfig::load_from(None, env(&[("GOODSMALL_REDIS__URL", "redis://127.0.0.1/0"), ("GOODSMALL_KAFKA__BROKERS", "127.0.0.1:9092")])).unwrap_err();
        assert!(err.to_string().contains("product"), "{err}");
        let err = ServiceConfig::load_from(
            None,
            env(&[
                ("GOODSMALL_REDIS__URL", "redis://127.0.0.1/0"),
                ("GOODSMALL_AUTH__PUBLIC_KEY_PEM", "not a key"),
                ("GOODSMALL_KAFKA__BROKERS", "127.0.0.1:9092"),
                ("GOODSMALL_PRODUCT__DATABASE__URL", "postgres://x"),
            ]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("GOODSMALL_PRODUCT__DATABASE__URL"), "{err}");
    }

    fn valid(extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let keys = goodsmall_platform::auth::KeyPair::generate();
        let mut vars = env(&[
            ("GOODSMALL_REDIS__URL", "redis://127.0.0.1/0"),
            ("GOODSMALL_AUTH__PUBLIC_KEY_PEM", &keys.public_pem),
            ("GOODSMALL_KAFKA__BROKERS", "127.0.0.1:9092"),
            ("GOODSMALL_PRODUCT__DATABASE__URL", "mysql://root@127.0.0.1/product"),
        ]);
        vars.extend(env(extra));
        vars
    }

    #[test]
    fn an_unknown_or_misspelt_variable_stops_it_naming_the_variable() {
        ServiceConfig::load_from(None, valid(&[("GOODSMALL_PRODUCT__CACHE__TTL_SECS", "60")])).unwrap();
        for name in ["GOODSMALL_PRODUCT__CACHE__TTL", "GOODSMALL_PRODUCT__CACHE_TTL_SECS", "GOODSMALL_PRODUCTS__CACHE__TTL_SECS", "GOODSMALL_AUTH__PUBLIC_KEY"] {
            let err = ServiceConfig::load_from(None, valid(&[(name, "1")])).unwrap_err().to_string();
            assert!(err.contains(name) && err.contains("is not a setting"), "{name}: {err}");
        }
    }

    #[test]
    fn credentials_never_show_in_debug_output() {
        let config = ServiceConfig::load_from(
            None,
            valid(&[("GOODSMALL_PRODUCT__DATABASE__URL", "mysql://product:product-db-secret@db/product"), ("GOODSMALL_REDIS__URL", "redis://:redis-secret@kv/0")]),
        )
        .unwrap();
        let printed = format!("{config:?}");
        assert!(!printed.contains("product-db-secret") && !printed.contains("redis-secret"), "{printed}");
        assert!(printed.contains("REDACTED"), "{printed}");
    }
}

goodsmall_platform::standalone_config!(ServiceConfig);
