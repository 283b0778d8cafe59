//! The product service's own settings (section `product`).

use std::time::Duration;

use goodsmall_platform::configuration::{ConfigError, DatabaseSettings, Section};
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

impl Section for ProductSettings {
    fn validate(&self, key: &str) -> Result<(), ConfigError> {
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

goodsmall_platform::service_config!(
    /// Everything the standalone `goodsmall-product` process reads (any other
    /// `GOODSMALL_*` variable stops it, naming the variable). It verifies access tokens
    /// with the public key only.
    product: ProductSettings
);

#[cfg(test)]
mod tests {
    use goodsmall_platform::configuration::{
        testing::{assert_secrets_hidden, assert_unknown_variables_named, standalone_vars, vars},
        Settings,
    };

    use super::*;

    #[test]
    fn a_missing_or_wrong_setting_is_named() {
        let err = ServiceConfig::load_from(
            None,
            vars(&[("GOODSMALL_REDIS__URL", "redis://127.0.0.1/0"), ("GOODSMALL_KAFKA__BROKERS", "127.0.0.1:9092")]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("product"), "{err}");
        let bad =
            [("GOODSMALL_AUTH__PUBLIC_KEY_PEM", "not a key"), ("GOODSMALL_PRODUCT__DATABASE__URL", "postgres://x")];
        let err = ServiceConfig::load_from(None, standalone_vars("PRODUCT", &bad)).unwrap_err();
        assert!(err.to_string().contains("GOODSMALL_PRODUCT__DATABASE__URL"), "{err}");
    }

    #[test]
    fn an_unknown_or_misspelt_variable_stops_it_naming_the_variable() {
        let unknown = [
            "GOODSMALL_PRODUCT__CACHE__TTL",
            "GOODSMALL_PRODUCT__CACHE_TTL_SECS",
            "GOODSMALL_PRODUCTS__CACHE__TTL_SECS",
            "GOODSMALL_AUTH__PUBLIC_KEY",
        ];
        assert_unknown_variables_named::<ServiceConfig>(
            standalone_vars("PRODUCT", &[("GOODSMALL_PRODUCT__CACHE__TTL_SECS", "60")]),
            &unknown,
        );
    }

    #[test]
    fn credentials_never_show_in_debug_output() {
        let secrets = [
            ("GOODSMALL_PRODUCT__DATABASE__URL", "mysql://product:product-db-secret@db/product"),
            ("GOODSMALL_REDIS__URL", "redis://:redis-secret@kv/0"),
        ];
        assert_secrets_hidden::<ServiceConfig>(
            standalone_vars("PRODUCT", &secrets),
            &["product-db-secret", "redis-secret"],
        );
    }
}
