"""The operator's RBAC is exactly its API use: no missing, no extra verb."""

from __future__ import annotations

from .report import check, one

# The operator's API use: (apiGroup, resource) -> verbs. Exactly these, nothing more.
CLUSTER_RULES = {
    ("goodsmall.io", "flashsales"): {"get", "list", "watch", "patch"},   # watch; finalizer (JSON patch)
    ("goodsmall.io", "flashsales/status"): {"patch"},                    # merge patch of the status
    ("goodsmall.io", "flashsales/finalizers"): {"update"},               # clusters enforcing owner refs
    ("events.k8s.io", "events"): {"create", "patch"},                    # Events and their series
    ("apps", "deployments"): {"get", "list", "watch", "patch"},          # Ready pods (watched by name); claims
    ("apps", "deployments/scale"): {"patch"},                            # the scale subresource
    ("autoscaling", "horizontalpodautoscalers"): {"list", "watch", "patch"},  # find the HPA; keep its minimum
    ("keda.sh", "scaledobjects"): {"list", "watch", "patch"},            # find the ScaledObject; keep its minimum
}
# Namespaced Role in the release namespace only.
NAMESPACE_RULES = {
    ("coordination.k8s.io", "leases"): {"get", "create", "update", "patch"},
}
# Verbs that are never authorized against a resource name: a rule that limits
# them with resourceNames would silently deny them. (list and watch are, when the
# request selects `metadata.name`, as the operator's Deployment watches do.)
UNNAMED_VERBS = {"create", "deletecollection"}


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


def check_rbac(objects: list[dict], sa_name: str, ctx) -> None:
    """ctx: the variant (label, namespace, the Deployments the operator scales, its Lease)."""
    label, namespace = ctx.label, ctx.namespace
    cluster_role = one(objects, "ClusterRole", label)
    role = one(objects, "Role", label)
    if cluster_role:
        what = f"[{label}] ClusterRole {cluster_role['metadata']['name']}"
        diff_rbac(rule_triples(cluster_role, what), expected_triples(CLUSTER_RULES), what)
        for resource in ("deployments", "deployments/scale"):
            names = resource_names(cluster_role, "apps", resource)
            check(names == [set(ctx.scaled_deployments)],
                  f"[{label}] {resource} must be limited to the chart's order and payment "
                  f"Deployments {sorted(ctx.scaled_deployments)}, got resourceNames {names}")
    if role:
        check(role["metadata"].get("namespace") == namespace,
              f"[{label}] the leases Role must live in the release namespace")
        what = f"[{label}] Role {role['metadata']['name']}"
        diff_rbac(rule_triples(role, what), expected_triples(NAMESPACE_RULES), what)
        for rule in role.get("rules") or []:
            if rule.get("resourceNames"):
                check(rule["resourceNames"] == [ctx.lease_name],
                      f"[{label}] leases may only be named {ctx.lease_name}, got {rule['resourceNames']}")
    roles = [o["kind"] for o in objects if o["kind"] in ("ClusterRole", "Role")]
    check(len(roles) == 2, f"[{label}] unexpected RBAC roles: {roles}")

    for kind, role_obj, role_kind in (("ClusterRoleBinding", cluster_role, "ClusterRole"),
                                      ("RoleBinding", role, "Role")):
        binding = one(objects, kind, label)
        if not (binding and role_obj):
            continue
        if kind == "RoleBinding":
            check(binding["metadata"].get("namespace") == namespace,
                  f"[{label}] RoleBinding must live in the release namespace")
        ref = binding.get("roleRef", {})
        check(ref.get("kind") == role_kind and ref.get("name") == role_obj["metadata"]["name"]
              and ref.get("apiGroup") == "rbac.authorization.k8s.io",
              f"[{label}] {kind} roleRef {ref} does not point at the {role_kind}")
        check(binding.get("subjects") == [{"kind": "ServiceAccount", "name": sa_name, "namespace": namespace}],
              f"[{label}] {kind} must bind only ServiceAccount {namespace}/{sa_name}, got {binding.get('subjects')}")
