#!/usr/bin/env python3
"""Renders helm/goodsmall offline (helm-python-sdk: Helm's own Go engine, no binary) and
prints the objects as one YAML stream, for `kubectl apply -f -`.

  python3 scripts/render_chart.py [--namespace NS] [--release NAME] [-f VALUES.yaml ...]
                                  [--variant LABEL] [--kinds K1,K2] [--set-json JSON] [--json]
  python3 scripts/render_chart.py --variants

-f merges a values file (relative paths are tried from the chart folder too, so
`-f values-dev.yaml` works), as `helm install -f` does; --set-json merges a JSON object
after them; --kinds keeps only objects of those kinds (e.g. the RBAC of the operator's
tests). --variant renders one of the value sets scripts/check_chart.py renders (its
values, release name and namespace; -f and --set-json merge over them); --variants
lists their labels. --json prints a JSON array instead of YAML. values.schema.json is
enforced: a wrong value exits 1 naming it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

try:
    import yaml
    from helm_python.chart import Chart
except ImportError as exc:  # pragma: no cover - depends on the machine
    sys.exit(f"render_chart: missing Python package ({exc.name}): python3 -m pip install helm-python-sdk")

from chart_checks.render import CHART_DIR, merge, objects, values_from  # noqa: E402
from chart_checks.variants import VARIANTS  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--namespace")
    parser.add_argument("--release")
    parser.add_argument("-f", "--values", action="append", default=[])
    parser.add_argument("--variant", choices=[v.label for v in VARIANTS])
    parser.add_argument("--variants", action="store_true", help="list the value sets of scripts/check_chart.py")
    parser.add_argument("--kinds", default="")
    parser.add_argument("--set-json", default="{}")
    parser.add_argument("--json", action="store_true", help="a JSON array instead of a YAML stream")
    args = parser.parse_args()
    if args.variants:
        print("\n".join(v.label for v in VARIANTS))
        return
    variant = next((v for v in VARIANTS if v.label == args.variant), None)
    release = args.release or (variant.release if variant else "goodsmall")
    namespace = args.namespace or (variant.namespace if variant else "goodsmall-system")
    kinds = {k for k in args.kinds.split(",") if k}
    chart = Chart.load(CHART_DIR)
    values = merge(variant.values if variant else {}, values_from(args.values, json.loads(args.set_json)))
    try:
        rendered = chart.render(values=values, name=release, namespace=namespace, is_install=True)
    except Exception as exc:  # HelmValuesError (schema), HelmRenderError (a template's fail)
        sys.exit(f"render_chart: {exc}")
    docs = [doc for _, doc in objects(rendered)[0] if not kinds or doc.get("kind") in kinds]
    if args.json:
        json.dump(docs, sys.stdout)
    else:
        yaml.safe_dump_all(docs, sys.stdout, sort_keys=False)


if __name__ == "__main__":
    main()
