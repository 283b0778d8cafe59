"""Failures collected across the checks, and small look-ups over rendered objects."""

from __future__ import annotations

failures: list[str] = []
notes: list[str] = []


def check(ok: bool, message: str) -> bool:
    if not ok:
        failures.append(message)
    return ok


def by_kind(objects: list[dict], kind: str) -> list[dict]:
    return [o for o in objects if o["kind"] == kind]


def named(objects: list[dict], kind: str, name: str) -> dict | None:
    return next((o for o in objects if o["kind"] == kind and o["metadata"].get("name") == name), None)


def component_of(o: dict) -> str | None:
    return (o.get("metadata", {}).get("labels") or {}).get("app.kubernetes.io/component")


def of_component(objects: list[dict], kind: str, component: str) -> list[dict]:
    return [o for o in by_kind(objects, kind) if component_of(o) == component]


def one(objects: list[dict], kind: str, label: str, component: str | None = None) -> dict | None:
    found = of_component(objects, kind, component) if component else by_kind(objects, kind)
    what = f"{kind} of {component}" if component else kind
    if check(len(found) == 1, f"[{label}] expected exactly one {what}, found {len(found)}"):
        return found[0]
    return None


FLOOR = "goodsmall.io/min-replicas"


def check_floor(obj: dict, field: str, want: int, operator_scales: bool, where: str) -> None:
    """The replicas (or autoscaler minimum) outside drops: where the operator owns them the
    chart writes only the goodsmall.io/min-replicas annotation (so `helm upgrade` never
    conflicts with the operator over the field), else the field itself."""
    spec = obj.get("spec") or {}
    floor = (obj["metadata"].get("annotations") or {}).get(FLOOR)
    if operator_scales:
        check(field not in spec and floor == str(want),
              f"{where}: the operator owns {field}: want it unset and {FLOOR}={want!r}, got {spec.get(field)!r} and {floor!r}")
    else:
        check(spec.get(field) == want and floor is None, f"{where}: {field} {spec.get(field)!r} (annotation {floor!r}), values say {want}")


def operator_scales(values: dict, component: str) -> bool:
    """Whether the operator owns the component's replicas (its chart defaults for the
    Deployments it scales)."""
    op = values["operator"]
    return bool(op["enabled"]) and component in ("order", "payment") and not op.get(f"{component}Deployment")
