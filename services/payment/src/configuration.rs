//! The payment service's own settings (section `payment`).

use std::time::Duration;

use goodsmall_platform::configuration::{ConfigError, DatabaseSettings, Section};
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

impl Section for PaymentSettings {
    fn validate(&self, key: &str) -> Result<(), ConfigError> {
        self.database.validate(&format!("{key}.database"))?;
        if self.timeout_secs == 0 {
            return Err(ConfigError::invalid(&format!("{key}.timeout_secs"), "must be positive"));
        }
        if self.expiry_tick_millis == 0 {
            return Err(ConfigError::invalid(&format!("{key}.expiry_tick_millis"), "must be positive"));
        }
        if !(0.0..=1.0).contains(&self.simulated_psp.failure_rate) {
            return Err(ConfigError::invalid(
                &format!("{key}.simulated_psp.failure_rate"),
                "must be between 0.0 and 1.0",
            ));
        }
        Ok(())
    }
}

impl PaymentSettings {
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs)
    }
}

goodsmall_platform::service_config!(
    /// Everything the standalone `goodsmall-payment` process reads; any other
    /// `GOODSMALL_*` variable stops it, naming the variable. Its Redis is where revoked
    /// sessions are looked up.
    payment: PaymentSettings
);

#[cfg(test)]
mod tests {
    use goodsmall_platform::configuration::testing::{
        assert_secrets_hidden, assert_unknown_variables_named, standalone_vars,
    };

    use super::*;

    #[test]
    fn credentials_never_show_in_debug_output() {
        assert_secrets_hidden::<ServiceConfig>(
            standalone_vars(
                "PAYMENT",
                &[("GOODSMALL_PAYMENT__DATABASE__URL", "mysql://pay:pay-db-secret@db:3306/payment")],
            ),
            &["pay-db-secret"],
        );
    }

    #[test]
    fn an_unknown_or_misspelt_variable_stops_it_naming_the_variable() {
        let unknown = [
            "GOODSMALL_PAYMENT__TIMEOUT",
            "GOODSMALL_PAYMENT__SIMULATED_PSP__FAILURE",
            "GOODSMALL_PAYMNT__TIMEOUT_SECS",
            "GOODSMALL_HTTP__PROT",
        ];
        assert_unknown_variables_named::<ServiceConfig>(
            standalone_vars("PAYMENT", &[("GOODSMALL_PAYMENT__TIMEOUT_SECS", "60")]),
            &unknown,
        );
    }
}
