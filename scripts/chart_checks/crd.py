"""helm/goodsmall/crds/flashsale.yaml is byte-for-byte crds/flashsale.yaml and valid."""

from __future__ import annotations

import os

import yaml

from .kube import validate
from .render import CHART_DIR, ROOT
from .report import check

CHART_CRD = CHART_DIR / "crds" / "flashsale.yaml"
CRD_SOURCE_NAME = os.environ.get("CRD_SOURCE") or "crds/flashsale.yaml"
CRD_SOURCE = ROOT / CRD_SOURCE_NAME
COPY_CMD = "cp crds/flashsale.yaml helm/goodsmall/crds/flashsale.yaml"


def check_crd(chart, version: str) -> None:
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
    check(spec.get("group") == "goodsmall.io" and names.get("plural") == "flashsales" and names.get("kind") == "FlashSale",
          "the CRD must define goodsmall.io FlashSale/flashsales (the RBAC rules name them)")
    check(spec.get("scope") == "Namespaced", "the FlashSale CRD must be Namespaced (watched in all namespaces)")
    check("fs" in (names.get("shortNames") or []), "the CRD must declare shortName fs (NOTES.txt tells users to `kubectl get fs`)")
    v1 = [v for v in spec.get("versions") or [] if v.get("name") == "v1alpha1"]
    check(bool(v1) and v1[0].get("served") and v1[0].get("storage"), "the CRD must serve and store v1alpha1")
    check(bool(v1) and "status" in ((v1[0].get("subresources") or {})),
          "the CRD's v1alpha1 must have the status subresource (the RBAC grants flashsales/status)")
