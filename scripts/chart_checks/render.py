"""Rendering helm/goodsmall offline: values files merged as Helm merges `-f` files
(maps deep-merged, later wins, null deletes a default), then Helm's own engine."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent.parent
CHART_DIR = ROOT / "helm" / "goodsmall"


def merge(base: dict, override: dict) -> dict:
    """`override` over `base`, recursively for maps; a null keeps the null (Helm then
    drops the chart's default for that key)."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def values_from(files: list[str | Path], extra: dict | None = None) -> dict:
    """The user-supplied values of `-f file ...` then `extra` (like --set)."""
    values: dict = {}
    for f in files:
        path = Path(f)
        if not path.is_absolute() and not path.exists():
            path = CHART_DIR / path
        loaded = yaml.safe_load(path.read_text()) or {}
        values = merge(values, loaded)
    return merge(values, extra or {})


def objects(rendered: dict[str, str]) -> tuple[list[tuple[str, dict]], str]:
    """(template, object) for every document of a render, and NOTES.txt."""
    docs, notes = [], ""
    for template, text in sorted(rendered.items()):
        if template.endswith("NOTES.txt"):
            notes = text
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                docs.append((template, doc))
    return docs, notes
