"""NetworkPolicies and public routes against helm/goodsmall/traffic.yaml, and
traffic.yaml against the code: a call or a route the list does not name fails."""

from __future__ import annotations

import re

import yaml

from .render import CHART_DIR, ROOT
from .report import by_kind, check, component_of, notes, of_component

TRAFFIC = CHART_DIR / "traffic.yaml"
HTTP_PORT = 8080
SERVICES = ("user", "product", "order", "payment")


def load() -> dict:
    return yaml.safe_load(TRAFFIC.read_text())


# --- traffic.yaml against the code --------------------------------------------------

def api_settings_in_code() -> dict[str, str]:
    """Settings naming another service's API -> where they are read."""
    found = {}
    for svc in SERVICES:
        path = ROOT / "services" / svc / "src" / "configuration.rs"
        for field in re.findall(r"pub (\w+_api_url)\s*:", path.read_text()):
            found[f"{svc}.{field}"] = str(path.relative_to(ROOT))
    main = ROOT / "operator" / "src" / "main.rs"
    for env in re.findall(r'env\s*=\s*"(GOODSMALL_OPERATOR__\w+_API_URL)"', main.read_text()):
        found[env] = str(main.relative_to(ROOT))
    return found


def route_prefixes_in_code() -> dict[str, set[str]]:
    """`/api/<name>` prefixes of each service's routes (its utoipa paths) -> services;
    those of the shared HTTP stack (the whole API document) are every service's."""
    found: dict[str, set[str]] = {}
    for svc in SERVICES:
        for path in sorted((ROOT / "services" / svc / "src" / "routes").rglob("*.rs")):
            for prefix in re.findall(r'path\s*=\s*"(/api/[^/"{]+)', path.read_text()):
                found.setdefault(prefix, set()).add(svc)
    shared = (ROOT / "services" / "platform" / "src" / "http" / "server.rs").read_text()
    for prefix in re.findall(r'\.route\("(/api/[^/"{]+)', shared):
        found.setdefault(prefix, set()).update(SERVICES)
    return found


def check_against_code(traffic: dict) -> None:
    listed = {s for call in traffic["calls"] for s in call.get("settings") or []}
    in_code = api_settings_in_code()
    for setting, where in sorted(in_code.items()):
        check(setting in listed,
              f"{where} reads {setting}, a call to another service that helm/goodsmall/traffic.yaml "
              f"does not list: add it to `calls` (and the NetworkPolicies that allow it)")
    for setting in sorted(listed - set(in_code)):
        notes.append(f"traffic.yaml lists {setting}, which the code does not read (yet)")

    routes = {**traffic["routes"], **traffic.get("devRoutes", {})}
    for prefix, services in sorted(route_prefixes_in_code().items()):
        if services == set(SERVICES):
            check(routes.get(prefix) in services,
                  f"every service serves {prefix} alike, which helm/goodsmall/traffic.yaml does not route: "
                  f"add `{prefix}: <one of them>` to its routes (the chart's `goodsmall.routes` helper too)")
            continue
        check(len(services) == 1, f"route prefix {prefix} is served by several services {sorted(services)}: one Ingress path cannot")
        svc = next(iter(services))
        check(routes.get(prefix) == svc,
              f"services/{svc}/src/routes serves {prefix}/..., which helm/goodsmall/traffic.yaml "
              f"routes to {routes.get(prefix)!r}: add `{prefix}: {svc}` to its routes (the chart's "
              f"`goodsmall.routes` helper too)")
    served = route_prefixes_in_code()
    for prefix, svc in sorted(routes.items()):
        check(prefix in served, f"traffic.yaml routes {prefix} to {svc}, but no service serves it")
        check(not prefix.startswith("/internal") and prefix.startswith("/api/"),
              f"traffic.yaml routes {prefix}: only /api/<name> prefixes are public")
    for svc in SERVICES:
        for path in sorted((ROOT / "services" / svc / "src").rglob("*.rs")):
            for internal in set(re.findall(r'"(/internal/[^"{]*)', path.read_text())):
                covered = [p for p in routes if internal.startswith(p)]
                check(not covered, f"{path.relative_to(ROOT)} serves {internal}, which the public route {covered} would expose")
    known = set(traffic["components"])
    for call in traffic["calls"]:
        check({call["from"], call["to"]} <= known, f"traffic.yaml call {call} names an unknown component")


# --- NetworkPolicies -----------------------------------------------------------------------

def expected_policy(traffic: dict, component: str) -> tuple[set[str], set[str], set[str]]:
    """(ingress sources, egress components, outbound server names) the design needs."""
    sources = {c["from"] for c in traffic["calls"] if c["to"] == component}
    sources |= {name for name, to in traffic["inbound"].items() if component in to}
    calls = {c["to"] for c in traffic["calls"] if c["from"] == component}
    outbound = {name for name, of in traffic["outbound"].items() if component in of}
    return sources, calls, outbound


def selected_component(peer: dict, ctx) -> str | None:
    """The chart component a peer selects (podSelector in the release namespace), else None."""
    if set(peer) != {"podSelector"}:
        return None
    labels = peer["podSelector"].get("matchLabels") or {}
    if labels.get("app.kubernetes.io/instance") != ctx.release or set(labels) != {
            "app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/component"}:
        return None
    return labels["app.kubernetes.io/component"]


def ports_of(rule: dict) -> list[tuple]:
    return sorted((p.get("port"), p.get("protocol", "TCP"), p.get("endPort")) for p in rule.get("ports") or [])


def check_policy(np: dict, traffic: dict, ctx) -> None:
    component = component_of(np)
    where = f"[{ctx.label}] NetworkPolicy {np['metadata']['name']}"
    spec = np["spec"]
    check((spec["podSelector"].get("matchLabels") or {}).get("app.kubernetes.io/component") == component,
          f"{where} does not select the {component} pods")
    check(sorted(spec.get("policyTypes") or []) == ["Egress", "Ingress"], f"{where} must restrict both Ingress and Egress")
    np_values = ctx.values["networkPolicy"]
    sources, calls, outbound = expected_policy(traffic, component)

    got_sources: set[str] = set()
    for rule in spec.get("ingress") or []:
        check(ports_of(rule) == [(HTTP_PORT, "TCP", None)], f"{where}: an ingress rule must open only {HTTP_PORT}/TCP, got {rule.get('ports')}")
        peers = rule.get("from")
        named = {n for n in ("entrypoint", "prometheus")
                 if (np_values["entryPoint" if n == "entrypoint" else "prometheus"] or None) == peers}
        if len(named) > 1:
            # entryPoint and prometheus alike (both empty: any peer): the rule is whichever the design wants.
            named = (named & sources) or named
        if named:
            got_sources |= named
            continue
        for peer in peers or [{}]:
            source = selected_component(peer, ctx)
            check(source is not None, f"{where}: ingress from {peer}, which is no component, entry point or Prometheus")
            if source:
                got_sources.add(source)
    check(got_sources == sources,
          f"{where}: ingress from {sorted(got_sources)}, but helm/goodsmall/traffic.yaml says {sorted(sources)}")

    got_calls, got_outbound = set(), set()
    for rule in spec.get("egress") or []:
        check(bool(rule.get("ports")), f"{where}: an egress rule without ports opens every port: {rule}")
        targets = [selected_component(p, ctx) for p in rule.get("to") or []]
        if targets and all(targets):
            check(ports_of(rule) == [(HTTP_PORT, "TCP", None)], f"{where}: egress to {targets} must be {HTTP_PORT}/TCP only")
            got_calls |= set(targets)
            continue
        names = {n for n, r in np_values["egress"].items()
                 if r and ports_of(r) == ports_of(rule) and (r.get("to") or None) == (rule.get("to") or None)}
        check(bool(names), f"{where}: egress rule {rule} is neither a component nor a networkPolicy.egress server")
        got_outbound |= names & outbound if names & outbound else names
    check(got_calls == calls, f"{where}: egress to components {sorted(got_calls)}, but traffic.yaml says {sorted(calls)}")
    wanted = {n for n in outbound if np_values["egress"].get(n)}
    check(got_outbound == wanted,
          f"{where}: egress to servers {sorted(got_outbound)}, but traffic.yaml says {sorted(wanted)}")


def check_policies(objects: list[dict], traffic: dict, ctx) -> None:
    policies = by_kind(objects, "NetworkPolicy")
    if not ctx.values["networkPolicy"]["enabled"]:
        check(not policies, f"[{ctx.label}] networkPolicy.enabled=false still renders {len(policies)} NetworkPolicies")
        return
    for component in traffic["components"]:
        if not ctx.values[component]["enabled"]:
            continue
        found = of_component(objects, "NetworkPolicy", component)
        if check(len(found) == 1, f"[{ctx.label}] {component} needs exactly one NetworkPolicy, found {len(found)}"):
            check_policy(found[0], traffic, ctx)


# --- Public routes -----------------------------------------------------------------------------

def expected_routes(traffic: dict, ctx) -> dict[str, str]:
    routes = dict(traffic["routes"])
    user = ctx.values["user"]
    if not user["existingSecret"] and user["mailTransport"] == "dev-mailbox":
        routes.update(traffic.get("devRoutes", {}))
    return {p: c for p, c in routes.items() if ctx.values[c]["enabled"]}


def service_component(objects: list[dict], name: str, port) -> str | None:
    svc = next((s for s in by_kind(objects, "Service") if s["metadata"]["name"] == name), None)
    if svc is None or not any(p.get("port") == port for p in svc["spec"].get("ports") or []):
        return None
    return component_of(svc)


def check_routes(objects: list[dict], traffic: dict, ctx) -> None:
    want = expected_routes(traffic, ctx)
    kinds = [("Ingress", ctx.values["ingress"]["enabled"]), ("HTTPRoute", ctx.values["httpRoute"]["enabled"])]
    for kind, enabled in kinds:
        found = by_kind(objects, kind)
        if not check(len(found) == (1 if enabled else 0), f"[{ctx.label}] expected {int(enabled)} {kind}, found {len(found)}"):
            continue
        if not found:
            continue
        where = f"[{ctx.label}] {kind} {found[0]['metadata']['name']}"
        got: dict[str, str | None] = {}
        if kind == "Ingress":
            for rule in found[0]["spec"].get("rules") or []:
                for path in (rule.get("http") or {}).get("paths") or []:
                    check(path.get("pathType") == "Prefix", f"{where}: {path.get('path')} must be pathType Prefix")
                    backend = path["backend"]["service"]
                    got[path["path"]] = service_component(objects, backend["name"], backend["port"].get("number"))
        else:
            for rule in found[0]["spec"].get("rules") or []:
                for match in rule.get("matches") or []:
                    p = match.get("path") or {}
                    check(p.get("type") == "PathPrefix", f"{where}: {p.get('value')} must be a PathPrefix match")
                    refs = rule.get("backendRefs") or []
                    check(len(refs) == 1, f"{where}: {p.get('value')} must have one backend")
                    got[p.get("value")] = service_component(objects, refs[0]["name"], refs[0].get("port")) if refs else None
        for prefix in got:
            check(prefix.startswith("/api/") and not prefix.startswith("/internal"),
                  f"{where} routes {prefix}: only /api/<name> prefixes may be public")
        check(got == want, f"{where} routes {got}, but helm/goodsmall/traffic.yaml says {want}")
