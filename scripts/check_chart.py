#!/usr/bin/env python3
"""Offline checks of the Helm chart helm/goodsmall. No cluster, no helm binary.

  python3 scripts/check_chart.py

1. Renders the chart with helm-python-sdk (Helm's own Go engine) with several value
   sets: the defaults; values-dev.yaml; autoscaling and NetworkPolicies off; KEDA,
   ServiceMonitors, an HTTPRoute and inline Secrets under another release name. Lints
   it (strict) with the defaults and with values-dev.yaml.
2. Validates every rendered object and the chart's CRD against the Kubernetes OpenAPI
   schemas shipped by kubernetes-validate (strict: unknown fields fail). ServiceMonitor,
   ScaledObject and HTTPRoute have no upstream schema: their fields are checked by hand
   (chart_checks/custom.py).
3. Per component (chart_checks/workloads.py): Deployment, Service, ServiceAccount,
   probes, resources, the locked-down security context, PodDisruptionBudget, HPA or
   ScaledObject, every setting it is given and where each Secret key goes (private keys
   to their one holder). That each process reads every setting it is given is tested
   by loading them with its own code (services/shop/tests/chart_settings.rs,
   operator/tests/chart_settings.rs), from these value sets (chart_checks/variants.py,
   rendered for them by scripts/render_chart.py --variant).
4. The NetworkPolicies and the Ingress/HTTPRoute against helm/goodsmall/traffic.yaml,
   and traffic.yaml against the code (chart_checks/traffic.py): a call between services
   or a public route prefix it does not list fails.
5. The operator's RBAC is exactly its API use (chart_checks/rbac.py), scoped to the
   chart's own order and payment Deployments; the CRD copy is crds/flashsale.yaml.
6. values.schema.json refuses bad values with a message naming them; the images are
   those scripts/images.sh builds, run as images/Containerfile's user (chart_checks/values.py).

Environment: CRD_SOURCE overrides the CRD the chart's copy must equal (default
crds/flashsale.yaml, relative to the repository root).
Exits 0 with a one-line summary, or 1 listing every failure.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

INSTALL = "python3 -m pip install helm-python-sdk kubernetes-validate"

try:
    from helm_python.chart import Chart, lint
    import kubernetes_validate  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the machine
    sys.exit(
        f"check_chart: missing Python package ({exc.name}). Install them with:\n"
        f"  {INSTALL}"
    )

from chart_checks import custom, crd, rbac, traffic, values as values_checks, workloads  # noqa: E402
from chart_checks.kube import kube_version, validate  # noqa: E402
from chart_checks.render import CHART_DIR, ROOT, objects as rendered_objects, values_from  # noqa: E402
from chart_checks.report import by_kind, check, failures, notes, one  # noqa: E402
from chart_checks.variants import DEV_SERVERS, NAMESPACE, VARIANTS, Variant  # noqa: E402

STANDARD_LABELS = ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/version",
                   "app.kubernetes.io/managed-by", "app.kubernetes.io/component")
# Components and the parts the chart adds around them (api: Ingress/HTTPRoute; mysql,
# redis: the connection Secrets; test: the `helm test` pod).
KNOWN_COMPONENTS = set(workloads.COMPONENTS) | {"api", "mysql", "redis", "observability", "test"}
CLUSTER_SCOPED = {"ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}

class Context:
    """What the checks need to know about one render."""

    def __init__(self, variant: Variant, app_version: str):
        self.label, self.values, self.release = variant.label, variant.merged, variant.release
        self.namespace, self.fullname, self.app_version = variant.namespace, variant.fullname, app_version
        v = self.values
        self.scaled_deployments = {f"{self.fullname}-order", f"{self.fullname}-payment"}
        self.lease_name = v["operator"]["leaseName"]
        self.existing_secrets = {s for s in (v["mysql"]["existingSecret"], v["redis"]["existingSecret"],
                                             v["tokenKeys"]["existingSecret"], v["internalKeys"]["existingSecret"],
                                             v["user"]["existingSecret"]) if s}
        # Defaults that name the release's own objects.
        self.expected_env = {
            "operator": {
                "GOODSMALL_OPERATOR__PRODUCT_API_URL": f"http://{self.fullname}-product:8080",
                "GOODSMALL_OPERATOR__ORDER_API_URL": f"http://{self.fullname}-order:8080",
                "GOODSMALL_OPERATOR__ORDER_DEPLOYMENT": f"{self.fullname}-order",
                "GOODSMALL_OPERATOR__PAYMENT_DEPLOYMENT": f"{self.fullname}-payment",
                "GOODSMALL_OPERATOR__LEASE_NAME": self.lease_name,
                "GOODSMALL_OPERATOR__LEASE_DURATION_SECS": str(v["operator"]["leaseDurationSecs"]),
                "GOODSMALL_OPERATOR__LISTEN": "0.0.0.0:8080",
                "RUST_LOG": v["operator"]["logLevel"],
            },
            "order": {"GOODSMALL_ORDER__PRODUCT_API_URL": f"http://{self.fullname}-product:8080"},
        }


def check_common(objects: list[dict], ctx: Context) -> None:
    seen = set()
    for o in objects:
        meta = o.get("metadata") or {}
        key = (o["kind"], meta.get("name"))
        check(key not in seen, f"[{ctx.label}] duplicate {o['kind']}/{meta.get('name')}")
        seen.add(key)
        labels = meta.get("labels") or {}
        missing = [k for k in STANDARD_LABELS if k not in labels]
        check(not missing, f"[{ctx.label}] {o['kind']}/{meta.get('name')} lacks labels {missing}")
        check(labels.get("app.kubernetes.io/component") in KNOWN_COMPONENTS,
              f"[{ctx.label}] {o['kind']}/{meta.get('name')}: unknown component {labels.get('app.kubernetes.io/component')!r}")
        check(meta.get("name", "").startswith(ctx.fullname), f"[{ctx.label}] {o['kind']}/{meta.get('name')} must be prefixed {ctx.fullname}")
        if o["kind"] not in CLUSTER_SCOPED:
            check(meta.get("namespace") == ctx.namespace, f"[{ctx.label}] {o['kind']}/{meta.get('name')} must be in the release namespace")


def run(chart: Chart, variant: Variant, version: str, routes_table: dict) -> int:
    label = variant.label
    try:
        variant.merged = chart.merge_values(variant.values)
        rendered = chart.render(values=variant.values, name=variant.release, namespace=variant.namespace, is_install=True)
        docs, notes_txt = rendered_objects(rendered)
    except Exception as exc:  # HelmValuesError, HelmRenderError, a YAML error
        check(False, f"[{label}] chart does not render: {exc}")
        return 0
    objects = []
    for template, doc in docs:
        if check(isinstance(doc, dict) and "kind" in doc and "apiVersion" in doc, f"[{label}] {template}: a document without kind/apiVersion"):
            objects.append(doc)
    if not check(bool(objects), f"[{label}] rendered nothing"):
        return 0
    ctx = Context(variant, chart.metadata["appVersion"])
    for o in objects:
        if o["kind"] not in custom.CUSTOM_KINDS:
            validate(o, version, label)
    check_common(objects, ctx)
    for component in workloads.COMPONENTS:
        if ctx.values[component]["enabled"]:
            workloads.check_component(objects, component, ctx)
    workloads.check_key_holders(objects, ctx)
    if ctx.values["operator"]["enabled"]:
        sa = one(objects, "ServiceAccount", label, "operator")
        if sa:
            rbac.check_rbac(objects, sa["metadata"]["name"], ctx)
    else:
        check(not by_kind(objects, "ClusterRole"), f"[{label}] operator.enabled=false still renders its ClusterRole")
    traffic.check_policies(objects, routes_table, ctx)
    traffic.check_routes(objects, routes_table, ctx)
    custom.check_custom(objects, ctx)
    check(bool(re.search(r"kubectl .*get fs", notes_txt)), f"[{label}] NOTES.txt must hint `kubectl get fs`")
    return len(objects)


def main() -> int:
    if not (CHART_DIR / "Chart.yaml").is_file():
        sys.exit(f"check_chart: no chart at {CHART_DIR}")
    version = kube_version()
    try:
        chart = Chart.load(CHART_DIR)
    except Exception as exc:
        sys.exit(f"check_chart: helm-python-sdk cannot load {CHART_DIR}: {exc}\n(reinstall with: {INSTALL})")

    for lint_label, lint_values in (("defaults", None), ("dev", values_from(["values-dev.yaml"], DEV_SERVERS))):
        report = lint(CHART_DIR, lint_values, strict=True, namespace=NAMESPACE)
        for msg in report.get("messages") or []:
            check(msg.get("severity", 0) < 2, f"helm lint ({lint_label}): {msg.get('path')}: {msg.get('error')}")
        for err in report.get("errors") or []:
            check(False, f"helm lint ({lint_label}): {err}")

    table = traffic.load()
    traffic.check_against_code(table)
    total = sum(run(chart, v, version, table) for v in VARIANTS)
    refused = values_checks.check_refusals(chart, "goodsmall", NAMESPACE)
    values_checks.check_dev_values()
    values_checks.check_images()
    crd.check_crd(chart, version)

    for note in notes:
        print(f"check_chart: note: {note}", file=sys.stderr)
    if failures:
        print(f"check_chart: {len(failures)} failure(s) in {CHART_DIR.relative_to(ROOT)}:", file=sys.stderr)
        for f in failures:
            print(f"  FAIL {f}", file=sys.stderr)
        return 1
    print(f"check_chart: OK: helm/goodsmall renders ({len(VARIANTS)} value sets, {total} objects), "
          f"validates strictly against Kubernetes {version}, NetworkPolicies and routes match traffic.yaml "
          f"and the code, RBAC is exactly the operator's API use, {refused} bad value sets refused, "
          f"CRD copy matches {crd.CRD_SOURCE_NAME}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
