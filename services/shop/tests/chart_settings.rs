//! Every service the Helm chart runs accepts the settings the chart gives it: for each
//! value set scripts/check_chart.py renders, each service Deployment's environment
//! (its ConfigMap resolved; each Secret's value replaced by a valid one of its shape)
//! is loaded by the function the service's binary loads its settings with at start.
//! The services deny unknown settings, so a misspelt or retired variable in the chart
//! fails here instead of stopping the pods after an install. The operator's variables
//! are checked by operator/tests/chart_settings.rs.

use std::collections::HashMap;

use base64::{engine::general_purpose::STANDARD, Engine};
use goodsmall_platform::{auth::KeyPair, configuration::Settings};
use goodsmall_testkit::chart::{chart_containers, chart_variants, ChartContainer, EnvSource};

/// Stand-ins for the Secrets' values, of the shape each setting needs: one key pair per
/// Secret, so a public and a private key of the same Secret belong together.
#[derive(Default)]
struct Placeholders {
    pairs: HashMap<String, KeyPair>,
}

impl Placeholders {
    fn value(&mut self, variable: &str, secret: &str, key: &str) -> String {
        let pair = |pairs: &mut HashMap<String, KeyPair>| {
            pairs.entry(secret.to_owned()).or_insert_with(KeyPair::generate).clone()
        };
        match key {
            "private-key.pem" => pair(&mut self.pairs).private_pem,
            "public-key.pem" => pair(&mut self.pairs).public_pem,
            "data-key" => STANDARD.encode([7u8; 32]),
            "mail-transport" => "smtps://mailer:placeholder@smtp.example.com:465".to_owned(),
            "bootstrap-admin-password" => "placeholder-password-1".to_owned(),
            _ if variable.ends_with("__DATABASE__URL") => {
                "mysql://goodsmall:placeholder@mysql.example.com:3306/goodsmall".to_owned()
            }
            _ if variable.ends_with("REDIS__URL") => "redis://:placeholder@redis.example.com:6379/0".to_owned(),
            _ => {
                panic!("{variable} comes from key {key} of Secret {secret}: give this test a placeholder of its shape")
            }
        }
    }

    /// The container's environment with every Secret and downward-API value filled in.
    fn environment(&mut self, container: &ChartContainer) -> Vec<(String, String)> {
        let value = |source: &EnvSource, this: &mut Self, variable: &str| match source {
            EnvSource::Value(value) => value.clone(),
            EnvSource::Secret { name, key } => this.value(variable, name, key),
            EnvSource::Field(path) => format!("placeholder-{path}"),
        };
        container.env.iter().map(|(variable, source)| (variable.clone(), value(source, self, variable))).collect()
    }
}

/// Loads `container`'s settings as its binary does: `None` for the operator (not a
/// service), else whether they loaded (the error's message when not).
fn load(container: &ChartContainer, placeholders: &mut Placeholders) -> Option<Result<(), String>> {
    if container.component == "operator" {
        return None;
    }
    let env = placeholders.environment(container);
    let loaded = match container.component.as_str() {
        "user" => goodsmall_user::configuration::ServiceConfig::load_from(None, env).map(drop),
        "product" => goodsmall_product::configuration::ServiceConfig::load_from(None, env).map(drop),
        "order" => goodsmall_order::configuration::ServiceConfig::load_from(None, env).map(drop),
        "payment" => goodsmall_payment::configuration::ServiceConfig::load_from(None, env).map(drop),
        other => panic!("{}: component {other:?} is no process this test knows", container.workload),
    };
    Some(loaded.map_err(|e| e.to_string()))
}

#[test]
fn every_service_loads_the_settings_the_chart_gives_it_in_every_value_set() {
    let mut placeholders = Placeholders::default();
    for variant in chart_variants() {
        let mut loaded = Vec::new();
        for container in chart_containers(&variant, "{}") {
            if let Some(result) = load(&container, &mut placeholders) {
                result.unwrap_or_else(|e| {
                    panic!("[{variant}] {} does not start with the chart's settings: {e}", container.workload)
                });
                loaded.push(container.component);
            }
        }
        loaded.sort();
        assert_eq!(loaded, ["order", "payment", "product", "user"], "[{variant}] the four services each load once");
    }
}

#[test]
fn a_variable_the_chart_sets_that_a_service_does_not_read_fails_the_check() {
    // One misspelt setting through each way the chart sets variables: a component's
    // `config` (its ConfigMap, read with envFrom) and its `extraEnv` (the container).
    let misspelt = [("order", "GOODSMALL_ORDER__GROUP_COMMIT"), ("payment", "GOODSMALL_PAYMENT__TIMEOUT")];
    let values = r#"{"order": {"config": {"GOODSMALL_ORDER__GROUP_COMMIT": "2"}},
                     "payment": {"extraEnv": [{"name": "GOODSMALL_PAYMENT__TIMEOUT", "value": "60"}]}}"#;
    let mut placeholders = Placeholders::default();
    let containers = chart_containers("defaults", values);
    for container in &containers {
        let result = load(container, &mut placeholders);
        match misspelt.iter().find(|(component, _)| *component == container.component) {
            Some((_, variable)) => {
                let err = result.expect("a service").expect_err(&format!("{} accepted {variable}", container.workload));
                assert!(err.contains(variable) && err.contains("is not a setting"), "{}: {err}", container.workload);
            }
            None => {
                if let Some(result) = result {
                    result.unwrap_or_else(|e| panic!("{}: {e}", container.workload));
                }
            }
        }
    }
    assert_eq!(containers.iter().filter(|c| misspelt.iter().any(|(m, _)| *m == c.component)).count(), misspelt.len());
}
