//! The CRD file is what the code generates; the examples and the Helm chart pass
//! offline validation with the real tools (kubernetes-validate, the Helm engine).

use std::{path::Path, process::Command};

use goodsmall_operator::{crd::FlashSale, validation};

fn repo(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

#[test]
fn the_crd_file_is_what_the_code_generates() {
    let on_disk = std::fs::read_to_string(repo("crds/flashsale.yaml")).unwrap_or_default();
    assert!(
        on_disk == goodsmall_operator::crd::crd_yaml(),
        "crds/flashsale.yaml is out of date: run `cargo run -p goodsmall-operator --bin crdgen && cp crds/flashsale.yaml helm/goodsmall/crds/`"
    );
}

#[test]
fn the_examples_are_valid_flash_sales() {
    let mut seen = 0;
    for entry in std::fs::read_dir(repo("examples")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let fs: FlashSale = serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        validation::validate(&fs.spec).unwrap_or_else(|p| panic!("{}: {p:?}", path.display()));
        seen += 1;
    }
    assert!(seen >= 2, "examples/ holds the FlashSale examples");
}

fn python(script: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new("python3").arg(script).args(args).current_dir(repo("")).output().expect("python3 runs");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn the_crd_passes_offline_schema_validation() {
    let check = r#"
import sys, yaml
try:
    import kubernetes_validate
except ImportError:
    sys.exit("kubernetes-validate is missing: python3 -m pip install kubernetes-validate")
with open(sys.argv[1]) as f:
    doc = yaml.safe_load(f)
kubernetes_validate.validate(doc, "1.33.0", strict=True)
print("valid")
"#;
    let script = std::env::temp_dir().join("goodsmall-validate-crd.py");
    std::fs::write(&script, check).unwrap();
    let crd = repo("crds/flashsale.yaml");
    let (ok, out) = python(script.to_str().unwrap(), &[crd.to_str().unwrap()]);
    assert!(ok && out.contains("valid"), "{out}");
}

#[test]
fn the_helm_chart_renders_and_validates_with_least_privilege_rbac() {
    let (ok, out) = python("scripts/check_chart.py", &[]);
    assert!(ok, "scripts/check_chart.py failed:\n{out}");
}
