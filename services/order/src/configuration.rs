//! The order service's own settings (section `order`).

use std::time::Duration;

use goodsmall_platform::{
    auth::internal::InternalVerifier,
    configuration::{ConfigError, DatabaseSettings, Section},
};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderSettings {
    pub database: DatabaseSettings,
    #[serde(default)]
    pub lifecycle: LifecycleSettings,
    /// Purchase batches that may commit at the same time. 1 suits a database sharing a
    /// busy machine (bigger batches, less work per order); raise it when the database
    /// has cores to spare, so a purchase arriving mid-commit starts its own batch
    /// instead of waiting (docs/benchmarks.md). SQLite always commits one at a time.
    #[serde(default = "default_group_commits")]
    pub group_commits: usize,
    /// Base URL of the product service's API (`http://goodsmall-product:8080`): the
    /// separate order service asks it whether a sale's product exists and who sells
    /// it. Required there; the one-process shop looks products up in-process.
    #[serde(default)]
    pub product_api_url: Option<String>,
    /// The FlashSale operator's Ed25519 public key (SPKI PEM): its tokens open the
    /// internal API (`/internal/flash-sales/...`) it records and drives sales through.
    /// Without it there is no internal API (the one-process shop's operator runs
    /// in-process).
    #[serde(default)]
    pub operator_public_key_pem: Option<String>,
    /// Joins of a sale's waiting room one client address (an IPv6 /64) may make a
    /// minute: a household or an office behind one address, not a farm of accounts
    /// (`429 TOO_MANY_ATTEMPTS` past it). Raise it for shoppers behind a carrier's NAT.
    #[serde(default = "default_queue_joins_per_address_per_minute")]
    pub queue_joins_per_address_per_minute: i64,
}

fn default_group_commits() -> usize {
    1
}

fn default_queue_joins_per_address_per_minute() -> i64 {
    20
}

/// How long an order stays in each after-sale status before the scheduler moves it
/// on (the original's delays: one day to ship, one to deliver, two to return).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LifecycleSettings {
    pub ship_after_secs: u64,
    pub deliver_after_secs: u64,
    pub return_window_secs: u64,
    pub return_complete_after_secs: u64,
    /// How often the scheduler looks.
    pub tick_millis: u64,
    /// A reservation this old without a committed order is released (see `orphans`).
    pub orphan_grace_secs: u64,
}

impl Default for LifecycleSettings {
    fn default() -> Self {
        const DAY: u64 = 24 * 3600;
        Self {
            ship_after_secs: DAY,
            deliver_after_secs: DAY,
            return_window_secs: 2 * DAY,
            return_complete_after_secs: DAY,
            tick_millis: 5000,
            orphan_grace_secs: 60,
        }
    }
}

impl LifecycleSettings {
    pub fn tick(&self) -> Duration {
        Duration::from_millis(self.tick_millis)
    }
}

impl Section for OrderSettings {
    fn validate(&self, key: &str) -> Result<(), ConfigError> {
        self.database.validate(&format!("{key}.database"))?;
        if self.queue_joins_per_address_per_minute < 1 {
            return Err(ConfigError::invalid(
                &format!("{key}.queue_joins_per_address_per_minute"),
                "must be at least 1",
            ));
        }
        if !(1..=16).contains(&self.group_commits) {
            return Err(ConfigError::invalid(&format!("{key}.group_commits"), "must be between 1 and 16"));
        }
        if self.lifecycle.tick_millis == 0 {
            return Err(ConfigError::invalid(&format!("{key}.lifecycle.tick_millis"), "must be positive"));
        }
        if self.product_api_url.is_some() {
            self.product_api(key)?;
        }
        self.operator_verifier(key)?;
        Ok(())
    }

    /// The separate service asks the product service about a sale's product, so it
    /// needs `product_api_url`.
    fn validate_separate(&self, key: &str) -> Result<(), ConfigError> {
        self.validate(key)?;
        self.product_api(key).map(drop)
    }
}

impl OrderSettings {
    /// The checker of the operator's tokens, when `order.operator_public_key_pem` is set.
    pub fn operator_verifier(&self, key: &str) -> Result<Option<InternalVerifier>, ConfigError> {
        self.operator_public_key_pem
            .as_deref()
            .map(|pem| {
                InternalVerifier::new(pem)
                    .map_err(|e| ConfigError::invalid(&format!("{key}.operator_public_key_pem"), e.to_string()))
            })
            .transpose()
    }

    /// `order.product_api_url`, checked: an `http://` URL (in-cluster traffic; this
    /// build has no TLS client), always ending in `/` so paths join under it.
    pub fn product_api(&self, key: &str) -> Result<reqwest::Url, ConfigError> {
        let setting = format!("{key}.product_api_url");
        let text = self.product_api_url.as_deref().ok_or_else(|| {
            ConfigError::invalid(
                &setting,
                "is required: the product service's base URL, e.g. \
                http://goodsmall-product:8080 (a sale's product is checked there)",
            )
        })?;
        let mut url = reqwest::Url::parse(text.trim())
            .map_err(|e| ConfigError::invalid(&setting, format!("is not a URL: {e}")))?;
        if url.scheme() != "http" || url.host_str().is_none() {
            return Err(ConfigError::invalid(&setting, "must be an http://host[:port] URL"));
        }
        if !url.path().ends_with('/') {
            url.set_path(&format!("{}/", url.path()));
        }
        Ok(url)
    }
}

goodsmall_platform::service_config!(
    /// Everything the standalone `goodsmall-order` process reads; any other
    /// `GOODSMALL_*` variable stops it, naming the variable.
    order: OrderSettings
);

#[cfg(test)]
mod tests {
    use goodsmall_platform::configuration::{testing, Settings};

    use super::*;

    const PRODUCT: (&str, &str) = ("GOODSMALL_ORDER__PRODUCT_API_URL", "http://goodsmall-product:8080");

    fn env(extra: &[(&str, &str)]) -> Vec<(String, String)> {
        testing::standalone_vars("ORDER", extra)
    }

    #[test]
    fn an_unknown_or_misspelt_variable_stops_it_naming_the_variable() {
        let unknown = [
            "GOODSMALL_ORDER__FOO",
            "GOODSMALL_ORDER__LIFECYCLE__TICK_MILIS",
            "GOODSMALL_ORDER__DATABASE__MAX_CONECTIONS",
            "GOODSMALL_KAFKA__BROKER",
            "GOODSMALL_ORDR__GROUP_COMMITS",
            "GOODSMALL_LOG__FILTR",
        ];
        testing::assert_unknown_variables_named::<ServiceConfig>(env(&[PRODUCT]), &unknown);
    }

    #[test]
    fn credentials_never_show_in_debug_output() {
        let secrets = [
            PRODUCT,
            ("GOODSMALL_ORDER__DATABASE__URL", "mysql://order:order-db-secret@db:3306/order"),
            ("GOODSMALL_REDIS__URL", "redis://:redis-secret@kv:6379/0"),
        ];
        testing::assert_secrets_hidden::<ServiceConfig>(env(&secrets), &["order-db-secret", "redis-secret"]);
    }

    #[test]
    fn the_separate_service_needs_the_product_service_url() {
        let err = ServiceConfig::load_from(None, env(&[])).unwrap_err().to_string();
        assert!(err.contains("GOODSMALL_ORDER__PRODUCT_API_URL") && err.contains("is required"), "{err}");
        for bad in ["goodsmall-product", "https://product", "ftp://product", "http://"] {
            let err = ServiceConfig::load_from(None, env(&[("GOODSMALL_ORDER__PRODUCT_API_URL", bad)]))
                .unwrap_err()
                .to_string();
            assert!(err.contains("GOODSMALL_ORDER__PRODUCT_API_URL"), "{bad}: {err}");
        }
        let config = ServiceConfig::load_from(
            None,
            env(&[("GOODSMALL_ORDER__PRODUCT_API_URL", "http://goodsmall-product:8080/shop")]),
        )
        .unwrap();
        let url = config.order.product_api("order").unwrap();
        assert_eq!(url.join("api/products/5").unwrap().as_str(), "http://goodsmall-product:8080/shop/api/products/5");
    }
}
