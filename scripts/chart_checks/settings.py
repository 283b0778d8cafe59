"""Every GOODSMALL_* variable the chart gives a process is a setting its code reads.

The services deny unknown fields, so a misspelt or retired setting would stop the pod
at start; this finds it before an install. A service's variables are walked from its
`ServiceConfig` (services/<svc>/src/configuration.rs) through the settings structs
(`__` nests), the operator's against the `env = "..."` names of operator/src/main.rs.
"""

from __future__ import annotations

import re

from .render import ROOT
from .report import check, notes

# Settings the chart may set ahead of the code (each is reported while the code lacks
# it); empty when chart and code agree.
PENDING: dict[str, set[str]] = {}
STRUCT = re.compile(r"pub struct (\w+)\s*(?:<[^>]*>)?\s*\{(.*?)\n\}", re.S)
FIELD = re.compile(r"^\s*pub (\w+)\s*:\s*([^\n]+?),?\s*(?://.*)?$", re.M)


def structs(crates: list[str]) -> dict[str, dict[str, str]]:
    """struct name -> {field: type}; the first crate listed wins a name clash."""
    found: dict[str, dict[str, str]] = {}
    for crate in crates:
        for path in sorted((ROOT / crate / "src").rglob("*.rs")):
            for name, body in STRUCT.findall(path.read_text()):
                found.setdefault(name, dict(FIELD.findall(body)))
    return found


def resolve(all_structs: dict, root: str, segments: list[str]) -> str | None:
    """None when `segments` lead from struct `root` to a field; else what is wrong."""
    current = root
    for i, seg in enumerate(segments):
        fields = all_structs.get(current)
        if fields is None:
            return f"{'.'.join(segments[:i])} is not a settings section"
        if seg not in fields:
            return f"`{seg}` is not a field of {current} (fields: {', '.join(sorted(fields))})"
        idents = re.findall(r"[A-Za-z_]\w*", fields[seg])
        nested = [t for t in idents if t in all_structs]
        if i + 1 < len(segments):
            if not nested:
                return f"{'.'.join(segments[:i + 1])} is a value, not a section"
            current = nested[-1]
        elif nested and nested[-1] not in {"SecretString", "TrustedProxies"} and all_structs[nested[-1]]:
            return f"{'.'.join(segments)} is a section ({nested[-1]}), not a value"
    return None


def operator_envs() -> set[str]:
    text = (ROOT / "operator" / "src" / "main.rs").read_text()
    return set(re.findall(r'env\s*=\s*"([A-Z0-9_]+)"', text))


def check_settings(component: str, names: set[str], label: str) -> None:
    pending = PENDING.get(component, set())
    if component == "operator":
        known = operator_envs()
        for name in sorted(n for n in names if n.startswith("GOODSMALL_")):
            if name in known:
                continue
            if name in pending:
                notes.append(f"{name}: the chart sets it, operator/src/main.rs does not read it yet")
                continue
            check(False, f"[{label}] the operator gets {name}, which operator/src/main.rs does not read")
        return
    all_structs = structs([f"services/{component}", "services/platform"])
    for name in sorted(n for n in names if n.startswith("GOODSMALL_")):
        segments = [s.lower() for s in name[len("GOODSMALL_"):].split("__")]
        problem = resolve(all_structs, "ServiceConfig", segments)
        if problem and name in pending:
            notes.append(f"{name}: the chart sets it, the {component} service does not read it yet")
            continue
        check(problem is None, f"[{label}] the {component} service gets {name}, which it does not read: {problem}")
