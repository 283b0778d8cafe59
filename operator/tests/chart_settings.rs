//! The operator reads every variable the Helm chart gives it: for each value set
//! scripts/check_chart.py renders, each name in the operator Deployment's environment
//! (its ConfigMap resolved) is the `env` of one of its command-line arguments, as clap
//! declares them (a misspelt or retired one would be ignored without a word). RUST_LOG
//! is read by the logging, not by clap. The services' settings are loaded by
//! services/shop/tests/chart_settings.rs.

#[path = "../src/main.rs"]
#[allow(dead_code)]
mod operator_main;

use goodsmall_testkit::chart::{chart_containers, ChartContainer};

/// The variables the chart gives the operator that it does not read.
fn unread(container: &ChartContainer) -> Vec<String> {
    let read = operator_main::setting_variables();
    container
        .env
        .iter()
        .map(|(name, _)| name.clone())
        .filter(|name| name != "RUST_LOG" && !read.contains(name))
        .collect()
}

fn operators(variant: &str, set_json: &str) -> Vec<ChartContainer> {
    chart_containers(variant, set_json).into_iter().filter(|c| c.component == "operator").collect()
}

#[test]
fn the_operator_reads_every_variable_the_chart_gives_it_in_every_value_set() {
    let read = operator_main::setting_variables();
    assert!(
        read.iter().any(|name| name == "GOODSMALL_OPERATOR__ORDER_API_URL")
            && read.iter().any(|name| name == "POD_NAME"),
        "{read:?}"
    );
    let mut checked = 0;
    for variant in goodsmall_testkit::chart::chart_variants() {
        for operator in operators(&variant, "{}") {
            assert!(
                unread(&operator).is_empty(),
                "[{variant}] {} gets variables it does not read: {:?}",
                operator.workload,
                unread(&operator)
            );
            checked += 1;
        }
    }
    assert!(checked > 0, "no value set runs the operator");
}

#[test]
fn a_variable_the_chart_sets_that_the_operator_does_not_read_fails_the_check() {
    for values in [
        r#"{"operator": {"extraEnv": [{"name": "GOODSMALL_OPERATOR__REFRESH_SEC", "value": "5"}]}}"#,
        r#"{"operator": {"config": {"GOODSMALL_OPERATOR__REFRESH_SEC": "5"}}}"#,
    ] {
        let operator = operators("defaults", values);
        assert_eq!(operator.len(), 1, "{values}");
        assert_eq!(unread(&operator[0]), ["GOODSMALL_OPERATOR__REFRESH_SEC"], "{values}");
    }
}
