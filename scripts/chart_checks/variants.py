"""The value sets scripts/check_chart.py renders the chart with. scripts/render_chart.py
--variant renders the same ones, for the tests that load each process's settings from
the rendered environment (services/shop/tests/chart_settings.rs,
operator/tests/chart_settings.rs)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .render import values_from
from .workloads import SERVICES

NAMESPACE = "goodsmall-system"

INLINE = {
    "mysql": {"existingSecret": "", "urls": {c: f"mysql://goodsmall:pw@db.example:3306/shop_{c}" for c in SERVICES}},
    "redis": {"existingSecret": "shop-redis"},
}


@dataclass
class Variant:
    label: str
    values: dict                   # what the user gives (-f files, --set)
    release: str = "goodsmall"
    namespace: str = NAMESPACE
    # Filled in by run(): the values as Helm merges them, the release's names.
    merged: dict = field(default_factory=dict)

    @property
    def fullname(self) -> str:
        return self.release if "goodsmall" in self.release else f"{self.release}-goodsmall"


# What scripts/dev-servers.sh writes beside values-dev.yaml: its servers' addresses.
DEV_SERVERS = {
    "mysql": {"existingSecret": "", "createIfMissing": True,
              "urls": {s: f"mysql://root@10.88.0.1:33061/goodsmall_{s}" for s in ("user", "product", "order", "payment")}},
    "redis": {"existingSecret": "", "url": "redis://10.88.0.1:6380/0"},
    "kafka": {"brokers": "10.88.0.1:9093"},
}

VARIANTS = [
    Variant("defaults", {}),
    Variant("dev", values_from(["values-dev.yaml"], DEV_SERVERS)),
    # Without the operator the chart writes the replicas and HPA minimums itself.
    Variant("operator-off", {"operator": {"enabled": False}}),
    Variant("hpa-and-networkpolicy-off", {
        "order": {"autoscaling": {"enabled": False}}, "payment": {"autoscaling": {"enabled": False}},
        "networkPolicy": {"enabled": False},
    }),
    Variant("keda-servicemonitor-httproute-inline-secrets", {
        **INLINE,
        "order": {"autoscaling": {"keda": {"enabled": True}}},
        "payment": {"autoscaling": {"keda": {"enabled": True, "triggers": [
            {"type": "kafka", "metadata": {"bootstrapServers": "kafka:9092", "consumerGroup": "payment",
                                           "topic": "goodsmall.orders.v1", "lagThreshold": "100"}}]}}},
        "serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
        "prometheusRule": {"enabled": True, "labels": {"release": "prometheus"}},
        "httpRoute": {"enabled": True, "parentRefs": [{"name": "public", "namespace": "gateway"}], "hostnames": ["shop.example.com"]},
        "ingress": {"enabled": False},
        "global": {"image": {"registry": "registry.example.com:5000/shop", "tag": "1.2.3"}},
    }, release="shop"),
]
