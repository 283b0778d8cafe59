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
