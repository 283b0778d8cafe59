//! `[kafka]` settings: where the brokers are and how patient to be with them.

use rdkafka::config::ClientConfig;
use serde::Deserialize;

use crate::configuration::ConfigError;

/// How a service reaches Kafka (`[kafka]` in the config file, `GOODSMALL_KAFKA__BROKERS`
/// and friends in the environment).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSettings {
    /// Bootstrap brokers, comma separated: `kafka-0:9092,kafka-1:9092`.
    pub brokers: String,
    /// `client.id` sent to the brokers (shows in their logs and metrics).
    #[serde(default)]
    pub client_id: Option<String>,
    /// How long [`KafkaBus::connect`] waits for the brokers to answer.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// How long one publish may wait for a broker's acknowledgement before it fails
    /// (`message.timeout.ms`); the relay then retries the batch.
    #[serde(default = "default_delivery_timeout_ms")]
    pub delivery_timeout_ms: u64,
    /// How long the producer gathers events before it sends them (`linger.ms`). Every
    /// produce request, and every fetch it completes for each consumer group, costs the
    /// brokers about the same whatever it carries, so a longer wait sends fewer, fuller
    /// requests: in a drop this is most of the brokers' work per purchase. It delays
    /// each saga step by at most this much (never the shopper's answer, which comes at
    /// the order's commit).
    #[serde(default = "default_linger_ms")]
    pub linger_ms: u64,
    /// Consumer group session timeout (`session.timeout.ms`): how soon a dead
    /// consumer's partitions move to another member.
    #[serde(default = "default_session_timeout_ms")]
    pub session_timeout_ms: u64,
    /// Prefix of every topic and consumer group name (`<namespace>.goodsmall.orders.v1`),
    /// so several shops, or test runs, can share one cluster without seeing each
    /// other's events. Events keep their logical topic in the envelope.
    #[serde(default)]
    pub namespace: Option<String>,
    /// librdkafka debug contexts (`debug`), e.g. `cgrp,topic,fetch`; logged through
    /// `tracing` at debug level under the `librdkafka` target.
    #[serde(default)]
    pub debug: Option<String>,
}

fn default_connect_timeout_ms() -> u64 {
    5_000
}
fn default_delivery_timeout_ms() -> u64 {
    30_000
}
fn default_linger_ms() -> u64 {
    50
}
fn default_session_timeout_ms() -> u64 {
    10_000
}

impl KafkaSettings {
    /// Settings for `brokers` with every other value at its default.
    pub fn new(brokers: impl Into<String>) -> Self {
        Self {
            brokers: brokers.into(),
            client_id: None,
            connect_timeout_ms: default_connect_timeout_ms(),
            delivery_timeout_ms: default_delivery_timeout_ms(),
            linger_ms: default_linger_ms(),
            session_timeout_ms: default_session_timeout_ms(),
            namespace: None,
            debug: None,
        }
    }

    /// The name a topic or consumer group has on the brokers.
    pub fn physical(&self, name: &str) -> String {
        match &self.namespace {
            Some(namespace) => format!("{namespace}.{name}"),
            None => name.to_owned(),
        }
    }

    /// `key` is where these settings live (`kafka` → `kafka.brokers`), for messages.
    pub fn validate(&self, key: &str) -> Result<(), ConfigError> {
        let brokers: Vec<&str> = self.brokers.split(',').map(str::trim).collect();
        if brokers.iter().all(|b| b.is_empty()) {
            return Err(ConfigError::invalid(&format!("{key}.brokers"), "is required (host:port, comma separated)"));
        }
        for broker in &brokers {
            let port = broker.rsplit_once(':').map(|(host, port)| (host, port.parse::<u16>()));
            match port {
                Some((host, Ok(port))) if !host.is_empty() && port > 0 => {}
                _ => {
                    return Err(ConfigError::invalid(
                        &format!("{key}.brokers"),
                        format!("has `{broker}`, which is not host:port (list brokers comma separated)"),
                    ))
                }
            }
        }
        if let Some(namespace) = &self.namespace {
            let legal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
            if namespace.is_empty() || namespace.len() > 100 || !namespace.chars().all(legal) {
                return Err(ConfigError::invalid(
                    &format!("{key}.namespace"),
                    "must be 1 to 100 of a-z, A-Z, 0-9, '.', '_', '-'",
                ));
            }
        }
        if let Some(id) = &self.client_id {
            if id.trim().is_empty() {
                return Err(ConfigError::invalid(&format!("{key}.client_id"), "must not be empty when set"));
            }
        }
        if self.connect_timeout_ms == 0 {
            return Err(ConfigError::invalid(&format!("{key}.connect_timeout_ms"), "must be positive"));
        }
        if self.delivery_timeout_ms < 1_000 {
            return Err(ConfigError::invalid(&format!("{key}.delivery_timeout_ms"), "must be at least 1000"));
        }
        if self.linger_ms > 1_000 {
            return Err(ConfigError::invalid(&format!("{key}.linger_ms"), "must be between 0 and 1000"));
        }
        if !(1_000..=300_000).contains(&self.session_timeout_ms) {
            return Err(ConfigError::invalid(&format!("{key}.session_timeout_ms"), "must be between 1000 and 300000"));
        }
        Ok(())
    }

    pub(super) fn base_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.brokers);
        config.set("client.id", self.client_id.as_deref().unwrap_or("goodsmall"));
        // Topics created after a consumer subscribed are noticed within seconds.
        config.set("topic.metadata.refresh.interval.ms", "10000");
        if let Some(debug) = &self.debug {
            config.set("debug", debug);
        }
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_deserialise_with_defaults_and_reject_unknown_fields() {
        let s: KafkaSettings = serde_json::from_value(serde_json::json!({ "brokers": "k1:9092,k2:9092" })).unwrap();
        assert_eq!(s.brokers, "k1:9092,k2:9092");
        assert_eq!(s.client_id, None);
        assert_eq!(s.connect_timeout_ms, 5_000);
        assert_eq!(s.linger_ms, 50);
        s.validate("kafka").unwrap();

        let err = serde_json::from_value::<KafkaSettings>(serde_json::json!({ "brokers": "k:1", "bokers": "x" }))
            .unwrap_err()
            .to_string();
        assert!(err.contains("bokers"), "{err}");
    }

    #[test]
    fn validation_names_the_setting() {
        let err = KafkaSettings::new("").validate("kafka").unwrap_err().to_string();
        assert!(err.contains("kafka.brokers") && err.contains("GOODSMALL_KAFKA__BROKERS"), "{err}");
        let err = KafkaSettings::new("k1:9092,nohost").validate("order.kafka").unwrap_err().to_string();
        assert!(err.contains("order.kafka.brokers") && err.contains("nohost"), "{err}");
        let mut s = KafkaSettings::new("k:9092");
        s.client_id = Some(" ".into());
        assert!(s.validate("kafka").unwrap_err().to_string().contains("kafka.client_id"));
        let mut s = KafkaSettings::new("k:9092");
        s.delivery_timeout_ms = 10;
        assert!(s.validate("kafka").unwrap_err().to_string().contains("kafka.delivery_timeout_ms"));
        let mut s = KafkaSettings::new("k:9092");
        s.linger_ms = 5_000;
        assert!(s.validate("kafka").unwrap_err().to_string().contains("kafka.linger_ms"));
    }
}
