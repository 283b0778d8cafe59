//! The order service's own settings (section `order`).

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
}

fn default_group_commits() -> usize {
    1
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
        Self { ship_after_secs: DAY, deliver_after_secs: DAY, return_window_secs: 2 * DAY, return_complete_after_secs: DAY, tick_millis: 5000, orphan_grace_secs: 60 }
    }
}

impl LifecycleSettings {
    pub fn tick(&self) -> Duration {
        Duration::from_millis(self.tick_millis)
    }
}

impl OrderSettings {
    pub fn validate(&self, key: &str) -> Result<(), ConfigError> {
        self.database.validate(&format!("{key}.database"))?;
        if !(1..=16).contains(&self.group_commits) {
            return Err(ConfigError::invalid(&format!("{key}.group_commits"), "must be between 1 and 16"));
        }
        if self.lifecycle.tick_millis == 0 {
            return Err(ConfigError::invalid(&format!("{key}.lifecycle.tick_millis"), "must be positive"));
        }
        Ok(())
    }
}

/// Everything the standalone `goodsmall-order` process reads.
#[derive(Debug, Clone, Deserialize)]
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
    pub order: OrderSettings,
}

impl ServiceConfig {
    pub fn load_from(file: Option<String>, env: Vec<(String, String)>) -> Result<Self, ConfigError> {
        let config: Self = configuration::load_from(file, env)?;
        config.http.validate()?;
        config.redis.validate("redis")?;
        config.order.validate("order")?;
        config.auth.public_key("auth")?;
        config.kafka.validate("kafka")?;
        Ok(config)
    }
}

goodsmall_platform::standalone_config!(ServiceConfig);
