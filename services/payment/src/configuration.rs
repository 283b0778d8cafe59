//! The payment service's own settings (section `payment`).

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
pub struct PaymentSettings {
    pub database: DatabaseSettings,
    /// An order not paid within this is cancelled and its stock released.
    #[serde(default = "ten_minutes")]
    pub timeout_secs: u64,
    /// How often expired payments are looked for.
    #[serde(default = "one_second")]
    pub expiry_tick_millis: u64,
    #[serde(default)]
    pub simulated_psp: SimulatedPspSettings,
}

fn ten_minutes() -> u64 {
    600
}
fn one_second() -> u64 {
    1000
}

/// The built-in payment provider for demos and tests.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimulatedPspSettings {
    /// Share of charges declined, 0.0 to 1.0 (the original system used 20 %).
    pub failure_rate: f64,
    pub latency_millis: u64,
}

impl Default for SimulatedPspSettings {
    fn default() -> Self {
        Self { failure_rate: 0.2, latency_millis: 50 }
    }
}

impl PaymentSettings {
    pub fn validate(&self, key: &str) -> Result<(), ConfigError> {
        self.database.validate(&format!("{key}.database"))?;
        if self.timeout_secs == 0 {
            return Err(ConfigError::invalid(&format!("{key}.timeout_secs"), "must be positive"));
        }
        if self.expiry_tick_millis == 0 {
            return Err(ConfigError::invalid(&format!("{key}.expiry_tick_millis"), "must be positive"));
        }
        if !(0.0..=1.0).contains(&self.simulated_psp.failure_rate) {
            return Err(ConfigError::invalid(&format!("{key}.simulated_psp.failure_rate"), "must be between 0.0 and 1.0"));
        }
        Ok(())
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs)
    }
}

/// Everything the standalone `goodsmall-payment` process reads; any other
/// `GOODSMALL_*` variable stops it, naming the variable.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    #[serde(default)]
    pub http: HttpSettings,
    #[serde(default)]
    pub log: LogSettings,
    /// Where revoked sessions are looked up.
    pub redis: RedisSettings,
    #[serde(default)]
    pub auth: KeySettings,
    /// The event bus between the services.
    pub kafka: KafkaSettings,
    pub payment: PaymentSettings,
}

impl ServiceConfig {
    pub fn load_from(file: Option<String>, env: Vec<(String, String)>) -> Result<Self, ConfigError> {
        let config: Self = configuration::load_from(file, env)?;
        config.http.validate()?;
        config.redis.validate("redis")?;
        config.payment.validate("payment")?;
        config.auth.public_key("auth")?;
        config.kafka.validate("kafka")?;
        Ok(config)
    }
}

goodsmall_platform::standalone_config!(ServiceConfig);

#[cfg(test)]
mod tests {
    use super::*;

    fn env(extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let keys = goodsmall_platform::auth::KeyPair::generate();
        let mut vars = vec![
            ("GOODSMALL_REDIS__URL".to_owned(), "redis://127.0.0.1:6379".to_owned()),
            ("GOODSMALL_AUTH__PUBLIC_KEY_PEM".to_owned(), keys.public_pem),
            ("GOODSMALL_KAFKA__BROKERS".to_owned(), "127.0.0.1:9092".to_owned()),
            ("GOODSMALL_PAYMENT__DATABASE__URL".to_owned(), "mysql://root@127.0.0.1/payment".to_owned()),
        ];
        vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        vars
    }

    #[test]
    fn an_unknown_or_misspelt_variable_stops_it_naming_the_variable() {
        ServiceConfig::load_from(None, env(&[("GOODSMALL_PAYMENT__TIMEOUT_SECS", "60")])).unwrap();
        for name in ["GOODSMALL_PAYMENT__TIMEOUT", "GOODSMALL_PAYMENT__SIMULATED_PSP__FAILURE", "GOODSMALL_PAYMNT__TIMEOUT_SECS", "GOODSMALL_HTTP__PROT"] {
            let err = ServiceConfig::load_from(None, env(&[(name, "1")])).unwrap_err().to_string();
            assert!(err.contains(name) && err.contains("is not a setting"), "{name}: {err}");
        }
    }

    #[test]
    fn credentials_never_show_in_debug_output() {
        let config = ServiceConfig::load_from(None, env(&[("GOODSMALL_PAYMENT__DATABASE__URL", "mysql://pay:pay-db-secret@db:3306/payment")])).unwrap();
        let printed = format!("{config:?}");
        assert!(!printed.contains("pay-db-secret"), "{printed}");
        assert!(printed.contains("REDACTED"), "{printed}");
    }
}
