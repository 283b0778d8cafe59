"""Each component's Deployment, Service, ServiceAccount, ConfigMap, PodDisruptionBudget
and autoscaler; where each secret goes; the dev servers of values-dev.yaml."""

from __future__ import annotations

import re

from .report import by_kind, check, check_floor, component_of, named, of_component, one, operator_scales

COMPONENTS = ("user", "product", "order", "payment", "operator")
SERVICES = ("user", "product", "order", "payment")

# What each process must be given (by name; values are checked below).
REQUIRED_ENV = {
    "user": {"GOODSMALL_HTTP__HOST", "GOODSMALL_USER__DATABASE__URL", "GOODSMALL_REDIS__URL",
             "GOODSMALL_AUTH__PUBLIC_KEY_PEM", "GOODSMALL_AUTH__PRIVATE_KEY_PEM", "GOODSMALL_USER__DATA_KEY",
             "GOODSMALL_USER__MAIL__TRANSPORT"},
    "product": {"GOODSMALL_HTTP__HOST", "GOODSMALL_PRODUCT__DATABASE__URL", "GOODSMALL_REDIS__URL",
                "GOODSMALL_AUTH__PUBLIC_KEY_PEM", "GOODSMALL_KAFKA__BROKERS"},
    "order": {"GOODSMALL_HTTP__HOST", "GOODSMALL_ORDER__DATABASE__URL", "GOODSMALL_REDIS__URL",
              "GOODSMALL_AUTH__PUBLIC_KEY_PEM", "GOODSMALL_KAFKA__BROKERS", "GOODSMALL_ORDER__PRODUCT_API_URL",
              "GOODSMALL_ORDER__OPERATOR_PUBLIC_KEY_PEM"},
    "payment": {"GOODSMALL_HTTP__HOST", "GOODSMALL_PAYMENT__DATABASE__URL", "GOODSMALL_REDIS__URL",
                "GOODSMALL_AUTH__PUBLIC_KEY_PEM", "GOODSMALL_KAFKA__BROKERS"},
    "operator": {"GOODSMALL_OPERATOR__REDIS_URL", "GOODSMALL_OPERATOR__PRODUCT_API_URL",
                 "GOODSMALL_OPERATOR__ORDER_API_URL", "GOODSMALL_OPERATOR__INTERNAL_KEY_PEM",
                 "GOODSMALL_OPERATOR__ORDER_DEPLOYMENT", "GOODSMALL_OPERATOR__PAYMENT_DEPLOYMENT",
                 "GOODSMALL_OPERATOR__LEASE_NAME", "GOODSMALL_OPERATOR__LEASE_DURATION_SECS",
                 "GOODSMALL_OPERATOR__LISTEN", "POD_NAME", "POD_NAMESPACE", "RUST_LOG"},
}
# Never given to them: the operator holds no database credentials any more.
FORBIDDEN_ENV = {"operator": {"GOODSMALL_OPERATOR__DATABASE_URL"}}


def effective(container: dict, pod: dict, key: str):
    """A security setting as the kubelet sees it: the container's, else the pod's."""
    value = (container.get("securityContext") or {}).get(key)
    return value if value is not None else (pod.get("securityContext") or {}).get(key)


def environment(dep: dict, objects: list[dict], label: str) -> dict[str, dict]:
    """The container's variables: name -> {"value": ...} (from its ConfigMap or env),
    {"secret": (name, key)} or {"field": path}."""
    c = dep["spec"]["template"]["spec"]["containers"][0]
    env: dict[str, dict] = {}
    for source in c.get("envFrom") or []:
        ref = (source.get("configMapRef") or {}).get("name")
        cm = named(objects, "ConfigMap", ref)
        if check(cm is not None, f"[{label}] {dep['metadata']['name']} reads ConfigMap {ref}, which the chart does not make"):
            for k, v in (cm.get("data") or {}).items():
                env[k] = {"value": v}
    for e in c.get("env") or []:
        vf = e.get("valueFrom") or {}
        if "secretKeyRef" in vf:
            env[e["name"]] = {"secret": (vf["secretKeyRef"]["name"], vf["secretKeyRef"]["key"])}
        elif "fieldRef" in vf:
            env[e["name"]] = {"field": vf["fieldRef"]["fieldPath"]}
        else:
            env[e["name"]] = {"value": e.get("value")}
    return env


def check_secret_refs(name: str, env: dict, objects: list[dict], ctx) -> None:
    """A secretKeyRef names a Secret the chart makes (with that key) or one the values name."""
    for var, src in env.items():
        if "secret" not in src:
            continue
        secret, key = src["secret"]
        made = named(objects, "Secret", secret)
        if made is not None:
            data = {**(made.get("stringData") or {}), **(made.get("data") or {})}
            check(key in data, f"[{ctx.label}] {name} {var} reads key {key} of Secret {secret}, which has {sorted(data)}")
            check(bool(str(data.get(key, "")).strip()), f"[{ctx.label}] {name} {var}: Secret {secret} key {key} is empty")
        else:
            check(secret in ctx.existing_secrets,
                  f"[{ctx.label}] {name} {var} reads Secret {secret}, which neither the chart makes nor the values name")


def check_component(objects: list[dict], component: str, ctx) -> dict | None:
    label = ctx.label
    v = ctx.values[component]
    fullname = f"{ctx.fullname}-{component}"
    dep = one(objects, "Deployment", label, component)
    if not dep:
        return None
    where = f"[{label}] Deployment {dep['metadata']['name']}"
    check(dep["metadata"]["name"] == fullname, f"{where} must be named {fullname}")
    spec = dep["spec"]
    pod = spec["template"]["spec"]
    pod_labels = spec["template"]["metadata"].get("labels") or {}
    selector = spec["selector"].get("matchLabels") or {}
    check(bool(selector) and selector.items() <= pod_labels.items(), f"{where}: selector does not match its pods")
    check(pod_labels.get("app.kubernetes.io/component") == component, f"{where}: pods lack app.kubernetes.io/component={component}")
    autoscaled = component in ("order", "payment") and v["autoscaling"]["enabled"]
    if autoscaled:
        check("replicas" not in spec, f"{where}: an autoscaler owns the replicas, so spec.replicas must be unset")
    else:
        check_floor(dep, "replicas", v["replicaCount"], operator_scales(ctx.values, component), where)
    check((spec.get("strategy") or {}).get("rollingUpdate", {}).get("maxUnavailable") == 0,
          f"{where}: a rollout must not take a ready replica away (maxUnavailable 0)")

    sa = one(objects, "ServiceAccount", label, component)
    check(sa is not None and pod.get("serviceAccountName") == sa["metadata"]["name"],
          f"{where} must run as its own ServiceAccount, got {pod.get('serviceAccountName')!r}")
    token = pod.get("automountServiceAccountToken")
    if component == "operator":
        check(token is not False, f"{where}: the operator needs its ServiceAccount token")
    else:
        check(token is False and sa is not None and sa.get("automountServiceAccountToken") is False,
              f"{where}: the {component} service never calls the Kubernetes API, so no token may be mounted")
    check(pod.get("enableServiceLinks") is False,
          f"{where}: enableServiceLinks must be false (Service variables would land in GOODSMALL_*)")

    containers = pod.get("containers") or []
    if not check(len(containers) == 1, f"{where}: expected one container, got {len(containers)}"):
        return dep
    c = containers[0]
    registry = v["image"]["registry"] or ctx.values["global"]["image"]["registry"]
    tag = v["image"]["tag"] or ctx.values["global"]["image"]["tag"] or ctx.app_version
    # No registry: the bare name, as `scripts/images.sh` names the images it builds.
    image = f"{registry}/goodsmall-{component}:{tag}" if registry else f"goodsmall-{component}:{tag}"
    check(c.get("image") == image, f"{where}: image is {c.get('image')}, expected {image}")
    check({"name": "http", "containerPort": 8080, "protocol": "TCP"} in (c.get("ports") or []),
          f"{where}: the container must expose port 8080 named http")
    for probe, path in (("startupProbe", "/healthz"), ("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = (c.get(probe) or {}).get("httpGet") or {}
        check(get.get("path") == path and get.get("port") in ("http", 8080), f"{where}: {probe} must GET {path} on port http, got {c.get(probe)}")
    check(effective(c, pod, "runAsNonRoot") is True, f"{where}: runAsNonRoot must be true")
    check(effective(c, pod, "runAsUser") not in (0, "0", None), f"{where}: must run as a non-zero uid")
    check((c.get("securityContext") or {}).get("allowPrivilegeEscalation") is False, f"{where}: allowPrivilegeEscalation must be false")
    check((c.get("securityContext") or {}).get("readOnlyRootFilesystem") is True, f"{where}: readOnlyRootFilesystem must be true")
    caps = (c.get("securityContext") or {}).get("capabilities") or {}
    check(caps.get("drop") == ["ALL"] and not caps.get("add"), f"{where}: capabilities must drop ALL and add none, got {caps}")
    check((effective(c, pod, "seccompProfile") or {}).get("type") == "RuntimeDefault", f"{where}: seccompProfile must be RuntimeDefault")
    res = c.get("resources") or {}
    for kind in ("requests", "limits"):
        check({"cpu", "memory"} <= set(res.get(kind) or {}), f"{where}: resources.{kind} needs cpu and memory")
    check(any(m.get("mountPath") == "/tmp" for m in c.get("volumeMounts") or []), f"{where}: /tmp must be a writable volume")

    env = environment(dep, objects, label)
    missing = REQUIRED_ENV[component] - set(env)
    check(not missing, f"{where}: missing settings {sorted(missing)}")
    extra = FORBIDDEN_ENV.get(component, set()) & set(env)
    check(not extra, f"{where}: must not get {sorted(extra)}")
    # Helm keeps numbers from values as floats: a large one rendered without `int64`
    # comes out as `2.592e+06`, which a setting parser may or may not read.
    for name, source in env.items():
        value = source.get("value")
        check(not (isinstance(value, str) and re.fullmatch(r"-?[0-9.]+e[+-]?[0-9]+", value)),
              f"{where}: {name} is rendered in exponent form ({value!r}): pipe it through int64")
    check(env.get("GOODSMALL_LOG__FORMAT", {}).get("value") == ctx.values["log"]["format"],
          f"{where}: GOODSMALL_LOG__FORMAT must be the chart's log.format (one format for every component)")
    check_secret_refs(dep["metadata"]["name"], env, objects, ctx)
    if component != "operator":
        check(env.get("GOODSMALL_HTTP__PORT", {}).get("value") == "8080", f"{where}: GOODSMALL_HTTP__PORT must be 8080 (the container port)")
        host = env.get("GOODSMALL_HTTP__HOST", {}).get("value")
        check(host not in (None, "127.0.0.1", "localhost"), f"{where}: GOODSMALL_HTTP__HOST {host!r} is unreachable from outside the pod")
    for name in ("POD_NAME", "POD_NAMESPACE") if component == "operator" else ():
        want = "metadata.name" if name == "POD_NAME" else "metadata.namespace"
        check(env.get(name, {}).get("field") == want, f"{where}: {name} must come from the downward API ({want})")
    for var, want in ctx.expected_env.get(component, {}).items():
        check(env.get(var, {}).get("value") == want, f"{where}: {var} must be {want!r}, got {env.get(var)}")

    svc = one(objects, "Service", label, component)
    if svc:
        check(svc["metadata"]["name"] == fullname, f"[{label}] Service {svc['metadata']['name']} must be named {fullname}")
        check(bool(svc["spec"].get("selector")) and svc["spec"]["selector"].items() <= pod_labels.items(),
              f"[{label}] Service {fullname}: selector does not match the pods")
        check(any(p.get("name") == "http" and p.get("port") == v["service"]["port"] and p.get("targetPort") in ("http", 8080)
                  for p in svc["spec"].get("ports") or []), f"[{label}] Service {fullname} must expose port http")
    pdbs = of_component(objects, "PodDisruptionBudget", component)
    if v["podDisruptionBudget"]["enabled"]:
        if check(len(pdbs) == 1, f"[{label}] {component} needs one PodDisruptionBudget, found {len(pdbs)}"):
            pdb = pdbs[0]["spec"]
            check((pdb["selector"].get("matchLabels") or {}).items() <= pod_labels.items(),
                  f"[{label}] PodDisruptionBudget of {component} does not select its pods")
            check(("minAvailable" in pdb) != ("maxUnavailable" in pdb), f"[{label}] PodDisruptionBudget of {component}: one of minAvailable/maxUnavailable")
            if component == "operator":
                check(pdb.get("minAvailable") == v["podDisruptionBudget"].get("minAvailable"), f"[{label}] the operator's PDB minAvailable")
    else:
        check(not pdbs, f"[{label}] {component}.podDisruptionBudget.enabled=false still renders one")
    check_autoscaler(objects, component, ctx, dep)
    return dep


def check_autoscaler(objects: list[dict], component: str, ctx, dep: dict) -> None:
    label = ctx.label
    hpas = of_component(objects, "HorizontalPodAutoscaler", component)
    scaled = of_component(objects, "ScaledObject", component)
    if component not in ("order", "payment"):
        check(not hpas and not scaled, f"[{label}] only order and payment are autoscaled, {component} has {len(hpas) + len(scaled)}")
        return
    a = ctx.values[component]["autoscaling"]
    want_hpa, want_keda = a["enabled"] and not a["keda"]["enabled"], a["enabled"] and a["keda"]["enabled"]
    check(len(hpas) == int(want_hpa) and len(scaled) == int(want_keda),
          f"[{label}] {component}: expected {int(want_hpa)} HPA and {int(want_keda)} ScaledObject, got {len(hpas)} and {len(scaled)}")
    target = {"apiVersion": "apps/v1", "kind": "Deployment", "name": dep["metadata"]["name"]}
    for hpa in hpas:
        spec = hpa["spec"]
        # The operator finds it by this reference (operator/src/scaling/kubernetes.rs).
        check(spec.get("scaleTargetRef") == target, f"[{label}] HPA of {component} must target {target}, got {spec.get('scaleTargetRef')}")
        check_floor(hpa, "minReplicas", a["minReplicas"], operator_scales(ctx.values, component), f"[{label}] HPA of {component}")
        check(spec.get("maxReplicas") == a["maxReplicas"], f"[{label}] HPA of {component}: maxReplicas {spec.get('maxReplicas')}")
        metrics = spec.get("metrics") or []
        check(any(m.get("resource", {}).get("name") == "cpu" for m in metrics), f"[{label}] HPA of {component} scales on CPU")


def check_key_holders(objects: list[dict], ctx) -> None:
    """Private keys go to their one holder: the token key to user, the internal key to the operator."""
    holders = {("tokenKeys", "private-key.pem"): {"user"}, ("internalKeys", "private-key.pem"): {"operator"},
               ("internalKeys", "public-key.pem"): {"order"}, ("tokenKeys", "public-key.pem"): set(SERVICES)}
    for (block, key), want in holders.items():
        secret = ctx.values[block]["existingSecret"] or f"{ctx.fullname}-{'token-keys' if block == 'tokenKeys' else 'internal-keys'}"
        got = set()
        for o in by_kind(objects, "Deployment") + by_kind(objects, "StatefulSet"):
            for c in o["spec"]["template"]["spec"]["containers"]:
                for e in c.get("env") or []:
                    ref = (e.get("valueFrom") or {}).get("secretKeyRef") or {}
                    if ref.get("name") == secret and ref.get("key") == key:
                        got.add(component_of(o))
        enabled = {c for c in want if ctx.values[c]["enabled"]}
        check(got == enabled, f"[{ctx.label}] {key} of Secret {secret} ({block}) must reach exactly {sorted(enabled)}, reaches {sorted(got)}")
