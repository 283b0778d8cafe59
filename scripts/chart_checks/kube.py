"""Strict validation against the Kubernetes OpenAPI schemas kubernetes-validate ships."""

from __future__ import annotations

import sys

import kubernetes_validate
from kubernetes_validate.utils import all_versions

from .report import check

INSTALL = "python3 -m pip install helm-python-sdk kubernetes-validate"


def kube_version() -> str:
    """The newest Kubernetes 1.3x schema set kubernetes-validate ships."""
    ours = [v for v in all_versions() if v.startswith("1.3")]
    if not ours:
        sys.exit(
            "check_chart: kubernetes-validate ships no Kubernetes 1.3x schemas; upgrade it:\n"
            f"  {INSTALL} --upgrade"
        )
    return ours[-1]


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
