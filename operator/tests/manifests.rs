//! The CRD file is what the code generates; the examples and the Helm chart pass
//! offline validation with the real tools (kubernetes-validate, the Helm engine).

use std::process::Command;

use goodsmall_operator::{crd::FlashSale, validation};
use goodsmall_testkit::repo_root;

#[test]
fn the_crd_file_is_what_the_code_generates() {
    let on_disk = std::fs::read_to_string(repo_root().join("crds/flashsale.yaml")).unwrap_or_default();
    assert!(
        on_disk == goodsmall_operator::crd::crd_yaml(),
        "crds/flashsale.yaml is out of date: run `cargo run -p goodsmall-operator --bin crdgen && cp \
            crds/flashsale.yaml helm/goodsmall/crds/`"
    );
}

#[test]
fn the_examples_are_valid_flash_sales() {
    let mut seen = 0;
    for entry in std::fs::read_dir(repo_root().join("examples")).unwrap() {
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

/// `python3 <args>` from the repository root: a script path, or `-c <code>`, then its arguments.
fn python(args: &[&str]) -> (bool, String) {
    let out = Command::new("python3").args(args).current_dir(repo_root()).output().expect("python3 runs");
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
    let (ok, out) = python(&["-c", check, "crds/flashsale.yaml"]);
    assert!(ok && out.contains("valid"), "{out}");
}

#[test]
fn the_examples_pass_the_crds_own_schema() {
    // jsonschema comes with kubernetes-validate; the CRD's openAPIV3Schema is checked as
    // the API server would (types, required fields, ranges, patterns, formats).
    let check = r#"
import sys, yaml, glob
try:
    import jsonschema
except ImportError:
    sys.exit("jsonschema is missing: python3 -m pip install kubernetes-validate")
# As the API server reads YAML: timestamps stay strings.
class Loader(yaml.SafeLoader):
    pass
Loader.yaml_implicit_resolvers = {
    k: [r for r in v if r[0] != "tag:yaml.org,2002:timestamp"] for k, v in Loader.yaml_implicit_resolvers.items()
}
crd = yaml.safe_load(open(sys.argv[1]))
schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
checker = jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker())
bad = {"apiVersion": "goodsmall.io/v1alpha1", "kind": "FlashSale", "metadata": {"name": "x"},
       "spec": {"productId": 0, "stock": 1, "price": "1.999", "opensAt": "soon",
                "closesAt": "2026-12-01T11:00:00Z", "perUserLimit": 1}}
assert len(list(checker.iter_errors(bad))) >= 3, "the schema refuses a bad spec"
files = sorted(glob.glob(sys.argv[2] + "/*.yaml"))
for path in files:
    for doc in yaml.load_all(open(path), Loader=Loader):
        errors = [e.message for e in checker.iter_errors(doc)]
        if errors:
            sys.exit(f"{path}: {errors}")
print(f"valid: {len(files)} files")
"#;
    let (ok, out) = python(&["-c", check, "crds/flashsale.yaml", "examples"]);
    assert!(ok && out.contains("valid: 2 files"), "{out}");
}

#[test]
fn the_helm_chart_renders_and_validates_with_least_privilege_rbac() {
    let (ok, out) = python(&["scripts/check_chart.py"]);
    assert!(ok, "scripts/check_chart.py failed:\n{out}");
}
