//! The separate services' binaries as an operator runs them: one command-line shape
//! (`serve`, also what no subcommand means, as the chart's containers start them), and
//! `goodsmall-user keygen` printing keys the `openssl` binary reads.

use std::{path::PathBuf, process::Command};

use goodsmall_platform::{
    auth::{Authenticator, KeySettings, Role, TokenSigner},
    kv::Kv,
};

const SERVICES: [&str; 4] = ["goodsmall-user", "goodsmall-product", "goodsmall-order", "goodsmall-payment"];

fn binary(name: &str) -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| goodsmall_testkit::build_binaries(&SERVICES.map(|s| (s, s)))).join(name)
}

/// Runs `binary args` with no `GOODSMALL_*` setting: (exit code, stdout, stderr).
fn run(name: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let output = Command::new(binary(name))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .output()
        .unwrap_or_else(|e| panic!("{name} runs: {e}"));
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn every_service_binary_serves_with_or_without_the_serve_subcommand() {
    for name in SERVICES {
        let (code, help, _) = run(name, &["--help"]);
        assert_eq!(code, Some(0), "{name} --help");
        assert!(help.lines().any(|l| l.trim_start().starts_with("serve ")), "{name} --help lists `serve`:\n{help}");
        // Unconfigured, serving stops at the first missing setting: the same answer with
        // `serve` as without (the chart passes no arguments).
        let bare = run(name, &[]);
        let serve = run(name, &["serve"]);
        assert_eq!(serve, bare, "{name} serve");
        let (code, _, stderr) = serve;
        assert_eq!(code, Some(2), "{name} serve: {stderr}");
        assert!(
            stderr.contains("GOODSMALL_") && !stderr.contains("unexpected argument"),
            "{name} serve names a setting: {stderr}"
        );
    }
}

fn openssl(args: &[&str]) -> String {
    let program = goodsmall_testkit::require_program("openssl", "apt-get install -y openssl");
    let output = Command::new(program).args(args).output().expect("openssl runs");
    assert!(output.status.success(), "openssl {}: {}", args.join(" "), String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `keygen` prints a PKCS#8 private key and its SPKI public key: OpenSSL reads the
/// private key and derives the same public key, and the services accept the pair; the
/// services accept a pair made by `openssl genpkey` too (the README's way).
#[tokio::test]
async fn keygen_prints_a_key_pair_openssl_reads() {
    let (code, printed, stderr) = run("goodsmall-user", &["keygen"]);
    assert_eq!(code, Some(0), "{stderr}");
    let block = |label: &str| {
        let begin = format!("-----BEGIN {label}-----");
        let end = format!("-----END {label}-----");
        let start = printed.find(&begin).unwrap_or_else(|| panic!("no {label} in:\n{printed}"));
        let stop = printed[start..].find(&end).unwrap() + start + end.len();
        format!("{}\n", &printed[start..stop])
    };
    let (private_pem, public_pem) = (block("PRIVATE KEY"), block("PUBLIC KEY"));
    let dir = std::env::temp_dir().join(goodsmall_testkit::unique_name("keygen"));
    std::fs::create_dir_all(&dir).unwrap();
    let private_file = dir.join("private.pem");
    std::fs::write(&private_file, &private_pem).unwrap();
    let derived = openssl(&["pkey", "-in", private_file.to_str().unwrap(), "-pubout"]);
    assert_eq!(derived, public_pem, "OpenSSL derives the printed public key");
    accepted_by_the_services(&private_pem, &public_pem).await;

    let made = dir.join("openssl.pem");
    openssl(&["genpkey", "-algorithm", "ed25519", "-out", made.to_str().unwrap()]);
    let public = openssl(&["pkey", "-in", made.to_str().unwrap(), "-pubout"]);
    accepted_by_the_services(&std::fs::read_to_string(&made).unwrap(), &public).await;
    let _ = std::fs::remove_dir_all(dir);
}

async fn accepted_by_the_services(private_pem: &str, public_pem: &str) {
    let settings = KeySettings {
        private_key_pem: Some(private_pem.to_owned().into()),
        public_key_pem: Some(public_pem.to_owned()),
        issuer: None,
    };
    settings.private_key("auth").expect("the user service takes the private key");
    settings.public_key("auth").expect("every service takes the public key");
    let token = TokenSigner::new(private_pem, settings.issuer(), std::time::Duration::from_secs(60))
        .unwrap()
        .issue(7, Role::Shopper, "s")
        .unwrap();
    let user = Authenticator::new(public_pem, &settings.issuer(), Kv::memory())
        .unwrap()
        .verify(&token)
        .await
        .expect("a token it signed verifies");
    assert_eq!(user.user_id, 7);
}
