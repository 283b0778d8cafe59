#!/usr/bin/env python3
"""Renders helm/goodsmall offline (helm-python-sdk: Helm's own Go engine, no binary) and
prints the objects as one YAML stream, for `kubectl apply -f -`.

  python3 scripts/render_chart.py [--namespace NS] [--release NAME] [--kinds K1,K2] [--set-json JSON]

--kinds keeps only objects of those kinds (e.g. the RBAC of the operator's tests);
--set-json merges a JSON object into the values.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

try:
    import yaml
    from helm_python.chart import Chart
except ImportError as exc:  # pragma: no cover - depends on the machine
    sys.exit(f"render_chart: missing Python package ({exc.name}): python3 -m pip install helm-python-sdk")

CHART_DIR = Path(__file__).resolve().parent.parent / "helm" / "goodsmall"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--namespace", default="goodsmall-system")
    parser.add_argument("--release", default="goodsmall")
    parser.add_argument("--kinds", default="")
    parser.add_argument("--set-json", default="{}")
    args = parser.parse_args()
    kinds = {k for k in args.kinds.split(",") if k}
    chart = Chart.load(CHART_DIR)
    rendered = chart.render(values=json.loads(args.set_json), name=args.release, namespace=args.namespace, is_install=True)
    docs = []
    for template, text in sorted(rendered.items()):
        if template.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc and (not kinds or doc.get("kind") in kinds):
                docs.append(doc)
    yaml.safe_dump_all(docs, sys.stdout, sort_keys=False)


if __name__ == "__main__":
    main()
