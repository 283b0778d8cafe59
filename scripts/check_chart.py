#!/usr/bin/env python3
"""Offline checks of the Helm chart helm/goodsmall. No cluster, no helm binary.

  python3 scripts/check_chart.py

1. Renders the chart with helm-python-sdk (Helm's own Go engine) twice: with the
   defaults, and with the ServiceMonitor on and the NetworkPolicy off; lints it.
2. Validates every rendered object and the chart's CRD against the Kubernetes
   OpenAPI schemas shipped by kubernetes-validate (strict: unknown fields fail).
   The ServiceMonitor has no upstream schema: its fields are checked by hand.
3. Asserts the operator's RBAC is exactly the API use below (no missing, no
   extra verb), that the Deployment runs as its ServiceAccount with probes,
   resources and a locked-down security context, the NetworkPolicy's ports, and
   that helm/goodsmall/crds/flashsale.yaml is byte-for-byte crds/flashsale.yaml.

Environment: CRD_SOURCE overrides the CRD the chart's copy must equal (default
crds/flashsale.yaml, relative to the repository root).
Exits 0 with a one-line summary, or 1 listing every failure.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

INSTALL = "python3 -m pip install helm-python-sdk kubernetes-validate"

try:
    import yaml
    from helm_python.chart import Chart, lint
    import kubernetes_validate
    from kubernetes_validate.utils import all_versions
except ImportError as exc:  # pragma: no cover - depends on the machine
    sys.exit(
        f"check_chart: missing Python package ({exc.name}). Install them with:\n"
        f"  {INSTALL}"
    )

ROOT = Path(__file__).resolve().parent.parent
CHART_DIR = ROOT / "helm" / "goodsmall"
CHART_CRD = CHART_DIR / "crds" / "flashsale.yaml"
CRD_SOURCE_NAME = os.environ.get("CRD_SOURCE") or "crds/flashsale.yaml"
CRD_SOURCE = ROOT / CRD_SOURCE_NAME
COPY_CMD = "cp crds/flashsale.yaml helm/goodsmall/crds/flashsale.yaml"

RELEASE = "goodsmall"
NAMESPACE = "goodsmall-system"

# The operator's API use: (apiGroup, resource) -> verbs. Exactly these, nothing more.
CLUSTER_RULES = {
    ("goodsmall.io", "flashsales"): {"get", "list", "watch", "patch"},   # watch; finalizer (JSON patch)
    ("goodsmall.io", "flashsales/status"): {"patch"},                    # merge patch of the status
    ("goodsmall.io", "flashsales/finalizers"): {"update"},               # clusters enforcing owner refs
    ("events.k8s.io", "events"): {"create", "patch"},                    # Events and their series
    ("apps", "deployments"): {"get", "patch"},                           # read replicas; claim annotations
    ("apps", "deployments/scale"): {"patch"},                            # the scale subresource
    ("autoscaling", "horizontalpodautoscalers"): {"list", "patch"},      # find the HPA; raise its minimum
    ("keda.sh", "scaledobjects"): {"list", "patch"},                     # find the ScaledObject; raise its minimum
}
# Namespaced Role in the release namespace only.
NAMESPACE_RULES = {
    ("coordination.k8s.io", "leases"): {"get", "create", "update", "patch"},
}
# Verbs that are never authorized against a resource name: a rule that limits
# them with resourceNames would silently deny them.
UNNAMED_VERBS = {"create", "list", "watch", "deletecollection"}

OPERATOR_ENV = {
    "GOODSMALL_OPERATOR__REDIS_URL": "redis://goodsmall-redis:6379",
    "GOODSMALL_OPERATOR__PRODUCT_API_URL": "http://goodsmall-product:8080",
    "GOODSMALL_OPERATOR__ORDER_DEPLOYMENT": "goodsmall-order",
    "GOODSMALL_OPERATOR__PAYMENT_DEPLOYMENT": "goodsmall-payment",
    "GOODSMALL_OPERATOR__LEASE_NAME": "goodsmall-operator",
    "RUST_LOG": "info",
}
STANDARD_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/managed-by",
)
CLUSTER_SCOPED = {"ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}
EGRESS_PORTS = {
    (53, "UDP"), (53, "TCP"), (443, "TCP"), (6443, "TCP"),
    (6379, "TCP"), (3306, "TCP"), (8080, "TCP"),
}

failures: list[str] = []


def check(ok: bool, message: str) -> bool:
    if not ok:
        failures.append(message)
    return ok


def kube_version() -> str:
    """The newest Kubernetes 1.3x schema set kubernetes-validate ships."""
    ours = [v for v in all_versions() if v.startswith("1.3")]
    if not ours:
        sys.exit(
            "check_chart: kubernetes-validate ships no Kubernetes 1.3x schemas; upgrade it:\n"
            f"  {INSTALL} --upgrade"
        )
    return ours[-1]


def render(chart: Chart, label: str, values: dict) -> tuple[list[dict], str]:
    """Render the chart; return its objects (each tagged with its template) and NOTES.txt."""
    try:
        rendered = chart.render(values=values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    except Exception as exc:  # HelmRenderError, HelmValuesError
        check(False, f"[{label}] chart does not render: {exc}")
        return [], ""
    objects, notes = [], ""
    for template, text in sorted(rendered.items()):
        if template.endswith("NOTES.txt"):
            notes = text
            continue
        try:
            docs = [d for d in yaml.safe_load_all(text) if d]
        except yaml.YAMLError as exc:
            check(False, f"[{label}] {template} is not valid YAML: {exc}")
            continue
        for doc in docs:
            if not check(isinstance(doc, dict) and "kind" in doc and "apiVersion" in doc,
                         f"[{label}] {template}: a document without kind/apiVersion"):
                continue
            doc["__template"] = template
            objects.append(doc)
    return objects, notes


def validate(doc: dict, version: str, label: str) -> None:
    where = f"[{label}] {doc['kind']}/{doc.get('metadata', {}).get('name')}"
    body = {k: v for k, v in doc.items() if k != "__template"}
    try:
        kubernetes_validate.validate(body, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        path = ".".join(str(p) for p in exc.path) or "(root)"
        check(False, f"{where} fails the Kubernetes {version} schema at {path}: {exc.message}")
    except kubernetes_validate.SchemaNotFoundError as exc:
        check(False, f"{where}: {exc.message}")


def by_kind(objects: list[dict], kind: str) -> list[dict]:
    return [o for o in objects if o["kind"] == kind]


def one(objects: list[dict], kind: str, label: str) -> dict | None:
    found = by_kind(objects, kind)
    if check(len(found) == 1, f"[{label}] expected exactly one {kind}, found {len(found)}"):
        return found[0]
    return None


def rule_triples(role: dict, what: str) -> set[tuple[str, str, str]]:
    """Expand a Role/ClusterRole into (apiGroup, resource, verb), refusing wildcards."""
    check("aggregationRule" not in role, f"{what} must not aggregate other roles")
    triples = set()
    for rule in role.get("rules") or []:
        check("nonResourceURLs" not in rule, f"{what} grants nonResourceURLs {rule.get('nonResourceURLs')}")
        groups, resources, verbs = rule.get("apiGroups") or [], rule.get("resources") or [], rule.get("verbs") or []
        for field, items in (("apiGroups", groups), ("resources", resources), ("verbs", verbs)):
            check("*" not in items and not any(i.endswith("/*") for i in items),
                  f"{what} uses a wildcard in {field}: {items}")
        names = rule.get("resourceNames")
        if names:
            check(not (set(verbs) & UNNAMED_VERBS),
                  f"{what}: verbs {sorted(set(verbs) & UNNAMED_VERBS)} on {resources} "
                  f"cannot be limited by resourceNames (they would be denied)")
        triples |= {(g, r, v) for g in groups for r in resources for v in verbs}
    return triples


def expected_triples(rules: dict) -> set[tuple[str, str, str]]:
    return {(g, r, v) for (g, r), verbs in rules.items() for v in verbs}


def diff_rbac(actual: set, expected: set, what: str) -> None:
    fmt = lambda s: ", ".join(f"{g or 'core'}/{r}:{v}" for g, r, v in sorted(s))  # noqa: E731
    missing, extra = expected - actual, actual - expected
    check(not missing, f"{what} is missing {fmt(missing)}")
    check(not extra, f"{what} grants more than the operator uses: {fmt(extra)}")


def resource_names(role: dict, group: str, resource: str) -> list[set]:
    return [set(r.get("resourceNames") or []) for r in role.get("rules") or []
            if group in (r.get("apiGroups") or []) and resource in (r.get("resources") or [])]


def check_rbac(objects: list[dict], sa_name: str, label: str) -> None:
    cluster_role = one(objects, "ClusterRole", label)
    role = one(objects, "Role", label)
    if cluster_role:
        what = f"[{label}] ClusterRole {cluster_role['metadata']['name']}"
        diff_rbac(rule_triples(cluster_role, what), expected_triples(CLUSTER_RULES), what)
        for resource in ("deployments", "deployments/scale"):
            names = resource_names(cluster_role, "apps", resource)
            check(names == [{"goodsmall-order", "goodsmall-payment"}],
                  f"[{label}] {resource} must be limited to the order and payment "
                  f"Deployments, got resourceNames {names}")
    if role:
        check(role["metadata"].get("namespace") == NAMESPACE,
              f"[{label}] the leases Role must live in the release namespace")
        what = f"[{label}] Role {role['metadata']['name']}"
        diff_rbac(rule_triples(role, what), expected_triples(NAMESPACE_RULES), what)
        for rule in role.get("rules") or []:
            if rule.get("resourceNames"):
                check(rule["resourceNames"] == [OPERATOR_ENV["GOODSMALL_OPERATOR__LEASE_NAME"]],
                      f"[{label}] leases may only be named {OPERATOR_ENV['GOODSMALL_OPERATOR__LEASE_NAME']}, "
                      f"got {rule['resourceNames']}")
    extra_roles = [o["kind"] for o in objects if o["kind"] in ("ClusterRole", "Role")]
    check(len(extra_roles) == 2, f"[{label}] unexpected RBAC roles: {extra_roles}")

    for kind, role_obj, role_kind in (("ClusterRoleBinding", cluster_role, "ClusterRole"),
                                      ("RoleBinding", role, "Role")):
        binding = one(objects, kind, label)
        if not (binding and role_obj):
            continue
        if kind == "RoleBinding":
            check(binding["metadata"].get("namespace") == NAMESPACE,
                  f"[{label}] RoleBinding must live in the release namespace")
        ref = binding.get("roleRef", {})
        check(ref.get("kind") == role_kind and ref.get("name") == role_obj["metadata"]["name"]
              and ref.get("apiGroup") == "rbac.authorization.k8s.io",
              f"[{label}] {kind} roleRef {ref} does not point at the {role_kind}")
        check(binding.get("subjects") == [{"kind": "ServiceAccount", "name": sa_name, "namespace": NAMESPACE}],
              f"[{label}] {kind} must bind only ServiceAccount {NAMESPACE}/{sa_name}, got {binding.get('subjects')}")


def effective(container: dict, pod: dict, key: str):
    """A security setting as the kubelet sees it: the container's, else the pod's."""
    value = (container.get("securityContext") or {}).get(key)
    return value if value is not None else (pod.get("securityContext") or {}).get(key)


def check_deployment(objects: list[dict], label: str) -> tuple[dict | None, str | None]:
    dep = one(objects, "Deployment", label)
    sa = one(objects, "ServiceAccount", label)
    if not dep:
        return None, None
    spec = dep["spec"]
    pod = spec["template"]["spec"]
    pod_labels = spec["template"]["metadata"].get("labels") or {}
    sa_name = pod.get("serviceAccountName")
    check(sa is not None and sa_name == sa["metadata"]["name"],
          f"[{label}] Deployment must run as the chart's ServiceAccount, got serviceAccountName={sa_name!r}")
    check(pod.get("automountServiceAccountToken", True) is not False,
          f"[{label}] the operator needs its ServiceAccount token mounted")
    check(spec.get("replicas") == 2, f"[{label}] default replicas must be 2, got {spec.get('replicas')}")
    selector = spec["selector"].get("matchLabels") or {}
    check(selector.items() <= pod_labels.items(), f"[{label}] Deployment selector does not match its pods")
    check(pod_labels.get("app.kubernetes.io/component") == "operator",
          f"[{label}] operator pods must carry app.kubernetes.io/component=operator")

    containers = pod.get("containers") or []
    if not check(len(containers) == 1, f"[{label}] expected one operator container, got {len(containers)}"):
        return dep, sa_name
    c = containers[0]
    check(c.get("image") == "ghcr.io/goodsmall/goodsmall-operator:0.1.0",
          f"[{label}] image is {c.get('image')}, expected ghcr.io/goodsmall/goodsmall-operator:0.1.0")
    check({"name": "http", "containerPort": 8080, "protocol": "TCP"} in (c.get("ports") or []),
          f"[{label}] container must expose port 8080 named http")
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = (c.get(probe) or {}).get("httpGet") or {}
        check(get.get("path") == path and get.get("port") in ("http", 8080),
              f"[{label}] {probe} must GET {path} on port http, got {c.get(probe)}")

    check(effective(c, pod, "runAsNonRoot") is True, f"[{label}] runAsNonRoot must be true")
    check((c.get("securityContext") or {}).get("readOnlyRootFilesystem") is True,
          f"[{label}] readOnlyRootFilesystem must be true")
    check((c.get("securityContext") or {}).get("allowPrivilegeEscalation") is False,
          f"[{label}] allowPrivilegeEscalation must be false")
    check((c.get("securityContext") or {}).get("privileged") in (None, False), f"[{label}] must not be privileged")
    caps = (c.get("securityContext") or {}).get("capabilities") or {}
    check("ALL" in (caps.get("drop") or []) and not caps.get("add"),
          f"[{label}] capabilities must drop ALL and add none, got {caps}")
    seccomp = effective(c, pod, "seccompProfile") or {}
    check(seccomp.get("type") == "RuntimeDefault", f"[{label}] seccompProfile must be RuntimeDefault, got {seccomp}")
    check(effective(c, pod, "runAsUser") not in (0, "0"), f"[{label}] must not run as uid 0")
    res = c.get("resources") or {}
    for kind in ("requests", "limits"):
        check({"cpu", "memory"} <= set(res.get(kind) or {}), f"[{label}] resources.{kind} needs cpu and memory")

    env = {e["name"]: e for e in c.get("env") or []}
    for name, value in OPERATOR_ENV.items():
        check(env.get(name, {}).get("value") == value,
              f"[{label}] env {name} must default to {value!r}, got {env.get(name)}")
    db = (env.get("GOODSMALL_OPERATOR__DATABASE_URL", {}).get("valueFrom") or {}).get("secretKeyRef")
    check(db == {"name": "goodsmall-order-db", "key": "url"},
          f"[{label}] GOODSMALL_OPERATOR__DATABASE_URL must come from Secret goodsmall-order-db key url, got {db}")
    for name, path in (("POD_NAME", "metadata.name"), ("POD_NAMESPACE", "metadata.namespace")):
        ref = (env.get(name, {}).get("valueFrom") or {}).get("fieldRef") or {}
        check(ref.get("fieldPath") == path, f"[{label}] {name} must come from the downward API ({path})")

    svc = one(objects, "Service", label)
    if svc:
        check((svc["spec"].get("selector") or {}).items() <= pod_labels.items() and svc["spec"].get("selector"),
              f"[{label}] Service selector does not match the operator pods")
        check(any(p.get("name") == "http" and p.get("port") == 8080 for p in svc["spec"].get("ports") or []),
              f"[{label}] Service must expose port 8080 named http")
    pdb = one(objects, "PodDisruptionBudget", label)
    if pdb:
        check(pdb["spec"].get("minAvailable") == 1, f"[{label}] PodDisruptionBudget minAvailable must be 1")
        check((pdb["spec"]["selector"].get("matchLabels") or {}).items() <= pod_labels.items(),
              f"[{label}] PodDisruptionBudget selector does not match the operator pods")
    return dep, sa_name


def check_network_policy(objects: list[dict], pod_labels: dict, label: str) -> None:
    np = one(objects, "NetworkPolicy", label)
    if not np:
        return
    spec = np["spec"]
    check((spec["podSelector"].get("matchLabels") or {}).items() <= pod_labels.items()
          and spec["podSelector"].get("matchLabels"),
          f"[{label}] NetworkPolicy podSelector does not select the operator pods")
    check(sorted(spec.get("policyTypes") or []) == ["Egress", "Ingress"],
          f"[{label}] NetworkPolicy must restrict both Ingress and Egress")
    ingress = {(p.get("port"), p.get("protocol", "TCP")) for r in spec.get("ingress") or [] for p in r.get("ports") or []}
    check(ingress == {(8080, "TCP")} and all(r.get("ports") for r in spec.get("ingress") or []),
          f"[{label}] ingress must allow only port 8080/TCP, got {sorted(ingress)}")
    egress = {(p.get("port"), p.get("protocol", "TCP")) for r in spec.get("egress") or [] for p in r.get("ports") or []}
    check(egress == EGRESS_PORTS and all(r.get("ports") for r in spec.get("egress") or []),
          f"[{label}] egress ports must be exactly {sorted(EGRESS_PORTS)}, got {sorted(egress)}")


def check_service_monitor(sm: dict, objects: list[dict], label: str) -> None:
    """ServiceMonitor (monitoring.coreos.com/v1) has no upstream schema: check it by hand."""
    where = f"[{label}] ServiceMonitor"
    check(sm.get("apiVersion") == "monitoring.coreos.com/v1", f"{where} apiVersion must be monitoring.coreos.com/v1")
    meta = sm.get("metadata") or {}
    check(bool(meta.get("name")) and meta.get("namespace") == NAMESPACE, f"{where} needs a name and the release namespace")
    check(set(sm) <= {"apiVersion", "kind", "metadata", "spec", "__template"}, f"{where} has unknown top-level fields")
    spec = sm.get("spec") or {}
    known = {"endpoints", "selector", "namespaceSelector", "jobLabel", "targetLabels", "podTargetLabels",
             "sampleLimit", "targetLimit", "labelLimit", "attachMetadata", "scrapeProtocols"}
    check(set(spec) <= known, f"{where} spec has unknown fields {sorted(set(spec) - known)}")
    endpoints = spec.get("endpoints") or []
    check(len(endpoints) == 1 and endpoints[0].get("port") == "http" and endpoints[0].get("path") == "/metrics",
          f"{where} must scrape /metrics on port http, got {endpoints}")
    for ep in endpoints:
        for key in ("interval", "scrapeTimeout"):
            if key in ep:
                check(isinstance(ep[key], str) and ep[key][-1:] in "smh" and ep[key][:-1].isdigit(),
                      f"{where} endpoint {key} {ep[key]!r} is not a duration like 30s")
    svc = next(iter(by_kind(objects, "Service")), None)
    wanted = (spec.get("selector") or {}).get("matchLabels") or {}
    check(bool(wanted) and svc is not None and wanted.items() <= (svc["metadata"].get("labels") or {}).items(),
          f"{where} selector {wanted} does not select the operator Service")
    check((spec.get("namespaceSelector") or {}).get("matchNames") == [NAMESPACE],
          f"{where} namespaceSelector must be the release namespace")


def check_common(objects: list[dict], label: str) -> None:
    seen = set()
    for o in objects:
        meta = o.get("metadata") or {}
        key = (o["kind"], meta.get("name"))
        check(key not in seen, f"[{label}] duplicate {o['kind']}/{meta.get('name')}")
        seen.add(key)
        labels = meta.get("labels") or {}
        missing = [k for k in STANDARD_LABELS if k not in labels]
        check(not missing, f"[{label}] {o['kind']}/{meta.get('name')} lacks labels {missing}")
        check(labels.get("app.kubernetes.io/component") == "operator",
              f"[{label}] {o['kind']}/{meta.get('name')} lacks app.kubernetes.io/component=operator")
        if o["kind"] not in CLUSTER_SCOPED:
            check(meta.get("namespace") == NAMESPACE,
                  f"[{label}] {o['kind']}/{meta.get('name')} must be in the release namespace")


def check_crd(chart: Chart, version: str) -> None:
    fix = f"run `{COPY_CMD}`"
    if not CRD_SOURCE.is_file():
        check(False, f"CRD source {CRD_SOURCE_NAME} is missing: generate it (it is the operator's CRD), then {fix}")
        return
    if not CHART_CRD.is_file():
        mkdir = "" if CHART_CRD.parent.is_dir() else "mkdir -p helm/goodsmall/crds, then "
        check(False, f"{CHART_CRD.relative_to(ROOT)} is missing: {mkdir}{fix}")
        return
    if not check(CHART_CRD.read_bytes() == CRD_SOURCE.read_bytes(),
                 f"{CHART_CRD.relative_to(ROOT)} differs from {CRD_SOURCE_NAME}: {fix}"):
        return
    loaded = [c for c in chart.crds if c.get("filename", c.get("name", "")).endswith("flashsale.yaml")]
    check(len(loaded) == 1, f"Helm does not load crds/flashsale.yaml from the chart (got {chart.crds})")
    docs = [d for d in yaml.safe_load_all(CHART_CRD.read_text()) if d]
    if not check(len(docs) == 1 and docs[0].get("kind") == "CustomResourceDefinition",
                 f"{CHART_CRD.relative_to(ROOT)} must hold exactly one CustomResourceDefinition"):
        return
    crd = docs[0]
    validate(crd, version, "crd")
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    check(spec.get("group") == "goodsmall.io" and names.get("plural") == "flashsales"
          and names.get("kind") == "FlashSale",
          "the CRD must define goodsmall.io FlashSale/flashsales (the RBAC rules name them)")
    check(spec.get("scope") == "Namespaced", "the FlashSale CRD must be Namespaced (watched in all namespaces)")
    check("fs" in (names.get("shortNames") or []),
          "the CRD must declare shortName fs (NOTES.txt tells users to `kubectl get fs`)")
    v1 = [v for v in spec.get("versions") or [] if v.get("name") == "v1alpha1"]
    check(bool(v1) and v1[0].get("served") and v1[0].get("storage"), "the CRD must serve and store v1alpha1")
    check(bool(v1) and "status" in ((v1[0].get("subresources") or {})),
          "the CRD's v1alpha1 must have the status subresource (the RBAC grants flashsales/status)")


def main() -> int:
    if not (CHART_DIR / "Chart.yaml").is_file():
        sys.exit(f"check_chart: no chart at {CHART_DIR}")
    version = kube_version()
    try:
        chart = Chart.load(CHART_DIR)
    except Exception as exc:
        sys.exit(f"check_chart: helm-python-sdk cannot load {CHART_DIR}: {exc}\n"
                 f"(reinstall with: {INSTALL})")

    report = lint(CHART_DIR, strict=True, namespace=NAMESPACE)
    for msg in report.get("messages") or []:
        check(msg.get("severity", 0) < 2, f"helm lint: {msg.get('path')}: {msg.get('error')}")
    for err in report.get("errors") or []:
        check(False, f"helm lint: {err}")

    variants = {
        "defaults": {},
        "servicemonitor-on-networkpolicy-off": {
            "operator": {"serviceMonitor": {"enabled": True}, "networkPolicy": {"enabled": False}},
        },
    }
    total = 0
    for label, values in variants.items():
        objects, notes = render(chart, label, values)
        if not objects:
            check(False, f"[{label}] rendered nothing")
            continue
        total += len(objects)
        for o in objects:
            if o["kind"] != "ServiceMonitor":
                validate(o, version, label)
        check_common(objects, label)
        dep, sa_name = check_deployment(objects, label)
        if sa_name:
            check_rbac(objects, sa_name, label)
        pod_labels = dep["spec"]["template"]["metadata"].get("labels", {}) if dep else {}
        monitors = by_kind(objects, "ServiceMonitor")
        policies = by_kind(objects, "NetworkPolicy")
        if label == "defaults":
            check(not monitors, f"[{label}] ServiceMonitor must be off by default")
            check_network_policy(objects, pod_labels, label)
        else:
            check(not policies, f"[{label}] networkPolicy.enabled=false still renders a NetworkPolicy")
            if check(len(monitors) == 1, f"[{label}] serviceMonitor.enabled=true renders {len(monitors)} ServiceMonitors"):
                check_service_monitor(monitors[0], objects, label)
        check("kubectl get fs" in notes, f"[{label}] NOTES.txt must hint `kubectl get fs`")

    check_crd(chart, version)

    if failures:
        print(f"check_chart: {len(failures)} failure(s) in {CHART_DIR.relative_to(ROOT)}:", file=sys.stderr)
        for f in failures:
            print(f"  FAIL {f}", file=sys.stderr)
        return 1
    print(f"check_chart: OK: helm/goodsmall renders ({len(variants)} value sets, {total} objects), "
          f"validates strictly against Kubernetes {version}, RBAC is exactly the operator's API use, "
          f"CRD copy matches {CRD_SOURCE_NAME}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
