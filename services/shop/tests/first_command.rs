//! The README's first command, as a newcomer runs it: the `goodsmall` binary with no
//! configuration starts on the embedded default, prints where everything is, seeds the
//! demo, and the README's curl walk-through (`scripts/walkthrough.sh`) works against it.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

struct Killed(std::process::Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_shop_starts_with_demo_goods_and_the_walkthrough_works() {
    let dir = std::env::temp_dir().join(format!("goodsmall-first-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_goodsmall"))
        .current_dir(&dir)
        .env("GOODSMALL_HTTP__PORT", "0")
        .env_remove("GOODSMALL_DATA_DIR")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.join("stderr.log")).unwrap())
        .spawn()
        .expect("the goodsmall binary runs");
    let stdout = child.stdout.take().unwrap();
    let _guard = Killed(child);

    let started = Instant::now();
    let mut printed = Vec::new();
    let mut api = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        printed.push(line.clone());
        if line.trim_start().starts_with("Stop with Ctrl-C") {
            break;
        }
        if let Some(url) = line.trim_start().strip_prefix("API") {
            api = Some(url.trim().trim_end_matches("/api").to_owned());
        }
        assert!(started.elapsed() < Duration::from_secs(60), "the shop did not start: {printed:?}");
    }
    let text = printed.join("\n");
    let base = api.unwrap_or_else(|| {
        let stderr = std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default();
        panic!("no API address printed:\n{text}\n{stderr}")
    });
    for what in ["/api/openapi.json", "/metrics", "/api/dev/mailbox", "merchant@goodsmall.dev", "Demo drop"] {
        assert!(text.contains(what), "the start banner lacks {what}:\n{text}");
    }
    assert!(
        ["user", "product", "order", "payment"].iter().all(|db| dir.join(format!(".goodsmall/{db}.db")).exists()),
        "SQLite files in .goodsmall/"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        let data = dir.join(".goodsmall");
        assert_eq!(mode(&data), 0o700, ".goodsmall/ is its owner's only");
        let files: Vec<_> = std::fs::read_dir(&data).unwrap().map(|e| e.unwrap().path()).collect();
        for file in ["jwt-ed25519.key", "jwt-ed25519.pub", "data.key", "user.db", "user.db-wal", "order.db-shm"] {
            assert!(files.contains(&data.join(file)), "{file} in {files:?}");
        }
        for file in &files {
            assert_eq!(mode(file), 0o600, "{} is readable by its owner only, got {:o}", file.display(), mode(file));
        }
    }

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/walkthrough.sh");
    let output = Command::new("bash")
        .arg(script)
        .arg(&base)
        .env("GOODSMALL", env!("CARGO_BIN_EXE_goodsmall"))
        .output()
        .expect("bash runs the walk-through");
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "walk-through failed:\n{out}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(out.contains("Tour Hoodie 2026"), "the demo goods are listed:\n{out}");
    assert!(out.contains("'line_total': '178.00'"), "two hoodies are in the cart:\n{out}");
    assert!(out.contains("'per_user_limit': 2"), "the demo drop is listed:\n{out}");
    assert!(
        out.contains("order status: COMPLETE") || out.contains("order status: FAILED"),
        "the drop order settled:\n{out}"
    );
    assert!(out.contains("'reserved': 0"), "nothing is left reserved once the order settled:\n{out}");
    assert!(out.contains("flashsale.goodsmall.io/walkthrough-drop created"), "the CLI applied the manifest:\n{out}");
    assert!(
        out.contains("SALE_NOT_OPEN") && out.contains("('drop purchase', 'PROCESSING')"),
        "refused before the opening, bought after:\n{out}"
    );
    assert!(
        out.lines().any(|l| l.starts_with("walkthrough-drop") && l.contains(" Open ")),
        "the CLI lists the open drop:\n{out}"
    );
    assert!(out.contains("walk-through complete"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A wrong or misspelt setting stops the process at once with a message naming it.
#[test]
fn a_bad_setting_stops_the_shop_and_names_the_setting() {
    let dir = std::env::temp_dir().join(format!("goodsmall-badcfg-{}", std::process::id()));
    let cases = [
        ("GOODSMALL_USER__DATA_KEY", "too-short", "GOODSMALL_USER__DATA_KEY"),
        ("GOODSMALL_HTTP__PORT", "eighty", "http.port"),
        ("GOODSMALL_HTTP__PROT", "8080", "prot"),
        ("GOODSMALL_PRODUCT__DATABASE__URL", "postgres://db/shop", "GOODSMALL_PRODUCT__DATABASE__URL"),
    ];
    for (key, value, named) in cases {
        let output = Command::new(env!("CARGO_BIN_EXE_goodsmall"))
            .env("GOODSMALL_DATA_DIR", &dir)
            .env(key, value)
            .output()
            .expect("the goodsmall binary runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{key}={value}: {stderr}");
        assert!(stderr.contains(named), "{key}={value} should name {named}: {stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A private key file others may read stops the shop at start with one line naming the
/// file and the fix, the same for either key (exit 2, as for any bad setting; no error
/// chain, no backtrace).
#[cfg(unix)]
#[test]
fn an_exposed_key_file_stops_the_shop_and_names_it() {
    use std::os::unix::fs::PermissionsExt;
    for (key, mode) in [("data.key", 0o644), ("jwt-ed25519.key", 0o640)] {
        let dir = std::env::temp_dir().join(format!("goodsmall-exposed-{}-{key}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        if key == "jwt-ed25519.key" {
            let pair = goodsmall_platform::auth::KeyPair::generate();
            std::fs::write(dir.join("jwt-ed25519.pub"), pair.public_pem).unwrap();
            std::fs::write(dir.join(key), pair.private_pem).unwrap();
        } else {
            std::fs::write(dir.join(key), "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").unwrap();
        }
        std::fs::set_permissions(dir.join(key), std::fs::Permissions::from_mode(mode)).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_goodsmall"))
            .env("GOODSMALL_DATA_DIR", &dir)
            .env("GOODSMALL_HTTP__PORT", "0")
            .env("RUST_BACKTRACE", "1")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("stderr.log")).unwrap())
            .spawn()
            .expect("the goodsmall binary runs");
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                panic!("{key}: the shop started with an exposed key file");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let stderr = std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default();
        assert_eq!(status.code(), Some(2), "{key}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{key}: one line:\n{stderr}");
        assert!(
            stderr.contains(&dir.join(key).display().to_string()) && stderr.contains("chmod 600"),
            "{key}: {stderr}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
