//! The served OpenAPI document describes the server. A schema-driven fuzzer
//! (schemathesis, pinned in scripts/test.sh) calls every operation of the one-process
//! shop from `/api/openapi.json`, as a shopper and as a merchant, and checks every
//! answer: no 5xx, and no status, content type or body the document does not describe.

use std::{path::PathBuf, process::Stdio, time::Duration};

use reqwest::StatusCode;
use serde_json::Value;
use tokio::{io::AsyncReadExt, process::Command};

use crate::helpers::{assert_status, TestShop};

/// Keep in step with scripts/test.sh.
const SCHEMATHESIS: &str = "schemathesis==4.32.5";
/// Test cases per operation and phase (the coverage phase adds the schema's boundary
/// cases): about 25 s a run on two idle cores. `GOODSMALL_FUZZ_EXAMPLES` asks for more
/// (a longer hunt by hand).
const MAX_EXAMPLES: u32 = 30;
/// One run may take this long (per 30 examples) before it is killed and the test fails.
const HARD_LIMIT: Duration = Duration::from_secs(200);
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance";

fn install_hint() -> String {
    format!(
        "install it with `python3 -m pip install {SCHEMATHESIS}` (add --break-system-packages on an externally \
        managed Python), or run scripts/test.sh, which does"
    )
}

/// Runs schemathesis's command line from the `python3` that scripts/test.sh installs
/// it into (its `schemathesis` script may not be on `PATH`, e.g. in `~/.local/bin`).
fn schemathesis() -> Command {
    let mut command = Command::new("python3");
    command.args([
        "-c",
        "import sys; from schemathesis.cli import schemathesis; sys.argv[0] = 'schemathesis'; sys.exit(schemathesis())",
    ]);
    command
}

/// Fails (never skips) when schemathesis is missing or is not the pinned version.
async fn require_schemathesis() {
    let pinned = SCHEMATHESIS.trim_start_matches("schemathesis==");
    let output = Command::new("python3")
        .args(["-c", "import importlib.metadata as m; print(m.version('schemathesis'))"])
        .output()
        .await;
    let output = output
        .unwrap_or_else(|e| panic!("python3 does not run ({e}); schemathesis {pinned} is needed: {}", install_hint()));
    let version = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    assert!(output.status.success(), "schemathesis is not installed: {}", install_hint());
    assert_eq!(version, pinned, "schemathesis {pinned} is needed, found {version}: {}", install_hint());
}

/// The shop with data the fuzzer can reach: the merchant's product 1, on sale in the
/// open sale 1 (the coverage phase tries an id's lower bound, 1).
async fn shop_with_a_drop() -> (TestShop, String, String) {
    require_schemathesis().await;
    let shop = TestShop::embedded_with(crate::drop_helpers::RELIABLE_PSP).await;
    let (merchant, shopper) = (shop.merchant().await, shop.shopper().await);
    let (product, sale) = shop.drop_of(&merchant, 1000, 100, 0).await;
    assert_eq!((product, sale), (1, 1), "the fuzzer's ids start at 1");
    (shop, merchant, shopper)
}

/// Runs schemathesis against the served document with `token`; panics with its report
/// on any failure or error.
async fn fuzz(shop: &TestShop, who: &str, token: &str, filters: &[&str]) {
    let schema = shop.url("/api/openapi.json");
    let examples = std::env::var("GOODSMALL_FUZZ_EXAMPLES").ok().and_then(|n| n.parse().ok()).unwrap_or(MAX_EXAMPLES);
    let hard_limit = HARD_LIMIT * examples.div_ceil(MAX_EXAMPLES).max(1);
    let document = assert_status(shop.get("/api/openapi.json", None).await, StatusCode::OK).await;
    assert_unique_operation_ids(&document);
    // Its own working directory: schemathesis and Hypothesis write nothing into the repo.
    let work = tempfile_dir(who);
    let mut command = schemathesis();
    command
        .current_dir(&work)
        .args([
            "--no-color",
            "run",
            &schema,
            "--checks",
            CHECKS,
            "--max-examples",
            &examples.to_string(),
            "--workers",
            "2",
        ])
        .args(["--generation-database", "none", "--request-timeout", "10", "--seed", &seed()])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(filters)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let started = std::time::Instant::now();
    let mut child = command.spawn().unwrap_or_else(|e| panic!("schemathesis did not start ({e}): {}", install_hint()));
    let (mut stdout, mut stderr) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let (mut out, mut err) = (String::new(), String::new());
    let finished = tokio::time::timeout(hard_limit, async {
        let (_, _, status) =
            tokio::join!(stdout.read_to_string(&mut out), stderr.read_to_string(&mut err), child.wait());
        status
    })
    .await;
    let _ = std::fs::remove_dir_all(&work);
    let report = format!("{out}\n{err}");
    let status = match finished {
        Ok(status) => status.expect("schemathesis ran"),
        Err(_) => panic!("schemathesis as the {who} did not finish within {hard_limit:?}; what it printed:\n{report}"),
    };
    assert!(
        status.success(),
        "schemathesis as the {who} found answers the document does not describe ({status}):\n{report}"
    );
    assert!(report.contains(" passed"), "schemathesis as the {who} ran no test case:\n{report}");
    eprintln!(
        "schemathesis as the {who}: {:.0?}, {}",
        started.elapsed(),
        report.lines().rev().find(|l| l.contains("generated")).unwrap_or("").trim()
    );
    if std::env::var_os("GOODSMALL_FUZZ_VERBOSE").is_some() {
        let metrics = shop.client.get(shop.url("/metrics")).send().await.unwrap().text().await.unwrap();
        let answered: Vec<&str> = metrics
            .lines()
            .filter(|l| l.starts_with("goodsmall_http_requests_total{") && l.contains("route=\"/api"))
            .collect();
        eprintln!("answers so far:\n{}", answered.join("\n"));
    }
}

/// `GOODSMALL_FUZZ_SEED` replays a run (schemathesis prints its seed); otherwise a
/// fixed one, so that a failure is the same on every machine.
fn seed() -> String {
    std::env::var("GOODSMALL_FUZZ_SEED").unwrap_or_else(|_| "20261202".into())
}

fn tempfile_dir(who: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("goodsmall-fuzz-{who}-{}-{}", std::process::id(), rand::random::<u32>()));
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}

fn assert_unique_operation_ids(document: &Value) {
    let mut seen = std::collections::BTreeSet::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("a path item") {
            let id = operation["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path} has no operationId"));
            assert!(seen.insert(id.to_owned()), "operationId {id} is used twice ({method} {path})");
        }
    }
}

/// Everything but logging out, which would end the session the rest runs with; then
/// logging out on its own.
async fn every_operation_as(shop: &TestShop, who: &str, token: &str, fresh: String) {
    fuzz(shop, who, token, &["--exclude-path", "/api/auth/logout"]).await;
    fuzz(shop, who, &fresh, &["--include-path", "/api/auth/logout", "--phases", "examples,coverage,fuzzing"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_describes_every_answer_to_a_shopper() {
    let (shop, _merchant, shopper) = shop_with_a_drop().await;
    let fresh = shop.shopper().await;
    every_operation_as(&shop, "shopper", &shopper, fresh).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_describes_every_answer_to_a_merchant() {
    let (shop, merchant, _shopper) = shop_with_a_drop().await;
    let fresh = shop.merchant().await;
    every_operation_as(&shop, "merchant", &merchant, fresh).await;
}
