"""Kinds without an upstream schema in kubernetes-validate, checked by hand:
ServiceMonitor (monitoring.coreos.com/v1), PrometheusRule (the same group; its rules
must be grafana/alerts/goodsmall.rules.yaml's), ScaledObject (keda.sh/v1alpha1; the
kube_api test also applies it against KEDA's own CRD) and HTTPRoute
(gateway.networking.k8s.io/v1). Also: the dashboards' ConfigMaps carry
grafana/dashboards/*.json byte for byte."""

from __future__ import annotations

import re

import yaml

from .render import ROOT
from .report import by_kind, check, check_floor, component_of, named, operator_scales

CUSTOM_KINDS = {"ServiceMonitor", "PrometheusRule", "ScaledObject", "HTTPRoute"}
DASHBOARDS = ROOT / "grafana" / "dashboards"
ALERTS = ROOT / "grafana" / "alerts" / "goodsmall.rules.yaml"
DURATION = re.compile(r"^[0-9]+(ms|s|m|h)$")


def top_level(o: dict, api_version: str, where: str, namespace: str) -> dict:
    check(o.get("apiVersion") == api_version, f"{where}: apiVersion must be {api_version}")
    meta = o.get("metadata") or {}
    check(bool(meta.get("name")) and meta.get("namespace") == namespace, f"{where}: needs a name and the release namespace")
    check(set(o) <= {"apiVersion", "kind", "metadata", "spec", "__template"}, f"{where}: unknown top-level fields {sorted(set(o) - {'apiVersion', 'kind', 'metadata', 'spec', '__template'})}")
    check(set(meta) <= {"name", "namespace", "labels", "annotations"}, f"{where}: unknown metadata fields")
    return o.get("spec") or {}


def check_service_monitor(sm: dict, objects: list[dict], ctx) -> None:
    where = f"[{ctx.label}] ServiceMonitor {sm['metadata'].get('name')}"
    spec = top_level(sm, "monitoring.coreos.com/v1", where, ctx.namespace)
    known = {"endpoints", "selector", "namespaceSelector", "jobLabel", "targetLabels", "podTargetLabels",
             "sampleLimit", "targetLimit", "labelLimit", "attachMetadata", "scrapeProtocols"}
    check(set(spec) <= known, f"{where}: spec has unknown fields {sorted(set(spec) - known)}")
    endpoints = spec.get("endpoints") or []
    check(len(endpoints) == 1 and endpoints[0].get("port") == "http" and endpoints[0].get("path") == "/metrics",
          f"{where} must scrape /metrics on port http, got {endpoints}")
    for ep in endpoints:
        check(set(ep) <= {"port", "path", "scheme", "interval", "scrapeTimeout", "honorLabels", "relabelings", "metricRelabelings"},
              f"{where}: unknown endpoint fields {sorted(ep)}")
        for key in ("interval", "scrapeTimeout"):
            if key in ep:
                check(isinstance(ep[key], str) and bool(DURATION.match(ep[key])), f"{where}: {key} {ep[key]!r} is not a duration like 30s")
    component = component_of(sm)
    svc = next((s for s in by_kind(objects, "Service") if component_of(s) == component), None)
    wanted = (spec.get("selector") or {}).get("matchLabels") or {}
    check(bool(wanted) and svc is not None and wanted.items() <= (svc["metadata"].get("labels") or {}).items(),
          f"{where}: selector {wanted} does not select the {component} Service")
    check((spec.get("namespaceSelector") or {}).get("matchNames") == [ctx.namespace], f"{where}: namespaceSelector must be the release namespace")


def check_scaled_object(so: dict, objects: list[dict], ctx) -> None:
    where = f"[{ctx.label}] ScaledObject {so['metadata'].get('name')}"
    spec = top_level(so, "keda.sh/v1alpha1", where, ctx.namespace)
    known = {"scaleTargetRef", "minReplicaCount", "maxReplicaCount", "pollingInterval", "cooldownPeriod",
             "idleReplicaCount", "initialCooldownPeriod", "fallback", "advanced", "triggers"}
    check(set(spec) <= known, f"{where}: spec has unknown fields {sorted(set(spec) - known)}")
    component = component_of(so)
    a = ctx.values[component]["autoscaling"]
    ref = spec.get("scaleTargetRef") or {}
    # The operator matches spec.scaleTargetRef.name (and kind, when given) to its Deployment.
    dep = named(objects, "Deployment", ref.get("name"))
    check(dep is not None and component_of(dep) == component and ref.get("kind", "Deployment") == "Deployment",
          f"{where}: scaleTargetRef {ref} must name the {component} Deployment")
    check_floor(so, "minReplicaCount", a["minReplicas"], operator_scales(ctx.values, component), where)
    check(spec.get("maxReplicaCount") == a["maxReplicas"], f"{where}: maxReplicaCount {spec.get('maxReplicaCount')}, values say {a['maxReplicas']}")
    for key in ("maxReplicaCount", "pollingInterval", "cooldownPeriod"):
        check(isinstance(spec.get(key), int), f"{where}: {key} must be an integer")
    triggers = spec.get("triggers") or []
    check(bool(triggers) and all(isinstance(t.get("type"), str) and isinstance(t.get("metadata", {}), dict) for t in triggers),
          f"{where}: triggers need a type and metadata, got {triggers}")
    for t in triggers:
        if t.get("type") in ("cpu", "memory"):
            check(t.get("metricType") in ("Utilization", "AverageValue") and all(isinstance(v, str) for v in t["metadata"].values()),
                  f"{where}: a {t['type']} trigger needs metricType and string metadata values, got {t}")


def check_http_route(route: dict, objects: list[dict], ctx) -> None:
    where = f"[{ctx.label}] HTTPRoute {route['metadata'].get('name')}"
    spec = top_level(route, "gateway.networking.k8s.io/v1", where, ctx.namespace)
    check(set(spec) <= {"parentRefs", "hostnames", "rules"}, f"{where}: spec has unknown fields {sorted(spec)}")
    check(spec.get("parentRefs") == ctx.values["httpRoute"]["parentRefs"] and all("name" in p for p in spec.get("parentRefs") or []),
          f"{where}: parentRefs must be httpRoute.parentRefs, each with a name")
    for rule in spec.get("rules") or []:
        check(set(rule) <= {"matches", "backendRefs", "filters", "timeouts"}, f"{where}: a rule has unknown fields {sorted(rule)}")
        for m in rule.get("matches") or []:
            check(set(m) <= {"path", "headers", "queryParams", "method"} and set(m.get("path") or {}) <= {"type", "value"},
                  f"{where}: a match has unknown fields {m}")
        for b in rule.get("backendRefs") or []:
            check(set(b) <= {"name", "port", "kind", "group", "namespace", "weight"} and isinstance(b.get("port"), int),
                  f"{where}: backendRef {b} needs a name and an integer port")
            check(named(objects, "Service", b.get("name")) is not None, f"{where}: backend {b.get('name')} is not a Service of the chart")


def check_custom(objects: list[dict], ctx) -> None:
    monitors = by_kind(objects, "ServiceMonitor")
    want = [c for c in ("user", "product", "order", "payment", "operator") if ctx.values[c]["enabled"]] if ctx.values["serviceMonitor"]["enabled"] else []
    check(sorted(component_of(m) for m in monitors) == sorted(want),
          f"[{ctx.label}] ServiceMonitors for {sorted(component_of(m) for m in monitors)}, expected {sorted(want)} (serviceMonitor.enabled={ctx.values['serviceMonitor']['enabled']})")
    for sm in monitors:
        check_service_monitor(sm, objects, ctx)
    for so in by_kind(objects, "ScaledObject"):
        check_scaled_object(so, objects, ctx)
    check_observability(objects, ctx)
    for route in by_kind(objects, "HTTPRoute"):
        check_http_route(route, objects, ctx)


def check_observability(objects: list[dict], ctx) -> None:
    """One ConfigMap per dashboard, holding its file as is; the PrometheusRule's groups
    are the rules file's."""
    files = {p.name: p.read_text() for p in sorted(DASHBOARDS.glob("*.json"))}
    check(bool(files), f"no dashboards in {DASHBOARDS}")
    maps = [o for o in by_kind(objects, "ConfigMap") if (o["metadata"].get("labels") or {}).get("grafana_dashboard") == "1"]
    if ctx.values["grafanaDashboards"]["enabled"]:
        shipped = {k: v for m in maps for k, v in (m.get("data") or {}).items()}
        check(sorted(shipped) == sorted(files), f"[{ctx.label}] dashboard ConfigMaps hold {sorted(shipped)}, grafana/dashboards has {sorted(files)}")
        for name, text in files.items():
            check(shipped.get(name, "").strip() == text.strip(), f"[{ctx.label}] the ConfigMap of {name} differs from grafana/dashboards/{name}")
    else:
        check(not maps, f"[{ctx.label}] dashboard ConfigMaps although grafanaDashboards.enabled is false")
    rules = by_kind(objects, "PrometheusRule")
    if not ctx.values["prometheusRule"]["enabled"]:
        check(not rules, f"[{ctx.label}] a PrometheusRule although prometheusRule.enabled is false")
        return
    if not check(len(rules) == 1, f"[{ctx.label}] expected one PrometheusRule, got {len(rules)}"):
        return
    where = f"[{ctx.label}] PrometheusRule {rules[0]['metadata'].get('name')}"
    spec = top_level(rules[0], "monitoring.coreos.com/v1", where, ctx.namespace)
    check(set(spec) == {"groups"}, f"{where}: spec must hold only groups")
    check(spec.get("groups") == yaml.safe_load(ALERTS.read_text())["groups"], f"{where}: its groups differ from {ALERTS.relative_to(ROOT)}")
