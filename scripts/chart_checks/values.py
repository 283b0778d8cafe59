"""values.schema.json refuses bad values with a message naming them; values-dev.yaml's
key pairs match and its Kafka is the tested broker's version."""

from __future__ import annotations

import re
import subprocess

import yaml

from .render import CHART_DIR, ROOT, values_from
from .report import check

# (values, what the refusal must name). Each is a mistake an SRE could make.
REFUSED = [
    ({"order": {"replicas": 3}}, "additional properties 'replicas'"),
    ({"order": {"autoscaling": {"maxReplicas": "ten"}}}, "/order/autoscaling/maxReplicas"),
    ({"order": {"autoscaling": {"minReplicas": 5, "maxReplicas": 2}}}, "order.autoscaling.maxReplicas (2) must be at least"),
    ({"mysql": {"existingSecret": "", "urls": {"user": "postgres://db/user"}}}, "/mysql/urls/user"),
    ({"mysql": {"existingSecret": ""}}, "/mysql/urls/order"),
    ({"redis": {"url": "localhost:6379"}}, "/redis/url"),
    ({"kafka": {"brokers": "kafka"}}, "/kafka/brokers"),
    ({"tokenKeys": {"existingSecret": "", "privateKeyPem": "secret", "publicKeyPem": "x"}}, "/tokenKeys/privateKeyPem"),
    ({"internalKeys": {"existingSecret": ""}}, "/internalKeys/publicKeyPem"),
    ({"user": {"existingSecret": "", "dataKey": "c2hvcnQ=", "mailTransport": "dev-mailbox"}}, "/user/dataKey"),
    ({"user": {"existingSecret": "", "dataKey": "8fxvd1rdxjjMk9oCuSfwLsdTnJqeh1uEckByunXMJRc=", "mailTransport": "sendmail"}}, "/user/mailTransport"),
    ({"order": {"groupCommits": 17}}, "/order/groupCommits"),
    ({"operator": {"leaseDurationSecs": 1}}, "/operator/leaseDurationSecs"),
    ({"operator": {"orderApiUrl": "https://goodsmall-order"}}, "/operator/orderApiUrl"),
    ({"payment": {"simulatedPsp": {"failureRate": 1.5}}}, "/payment/simulatedPsp/failureRate"),
    ({"networkPolicy": {"egress": {"mysqll": None}}}, "additional properties 'mysqll'"),
    ({"order": {"config": {"ORDER_GROUP_COMMITS": "2"}}}, "/order/config"),
    ({"httpRoute": {"enabled": True}}, "httpRoute.parentRefs"),
    ({"user": {"podDisruptionBudget": {"minAvailable": 1}}}, "user.podDisruptionBudget"),
    ({"user": {"existingSecret": "", "dataKey": "8fxvd1rdxjjMk9oCuSfwLsdTnJqeh1uEckByunXMJRc=", "mailTransport": "dev-mailbox",
               "replicaCount": 2}}, "user.mailTransport dev-mailbox keeps mail in one pod's memory"),
]


def check_refusals(chart, release: str, namespace: str) -> int:
    for values, names in REFUSED:
        try:
            chart.render(values=values, name=release, namespace=namespace, is_install=True)
        except Exception as exc:  # HelmValuesError (schema) or HelmRenderError (fail)
            check(names in str(exc), f"values {values} are refused, but the message does not name {names!r}: {exc}")
        else:
            check(False, f"values {values} render: values.schema.json (or goodsmall.validate) must refuse them")
    return len(REFUSED)


def public_of(private_pem: str) -> str | None:
    out = subprocess.run(["openssl", "pkey", "-pubout"], input=private_pem, capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else None


def check_dev_values() -> None:
    dev = values_from(["values-dev.yaml"])
    for block in ("tokenKeys", "internalKeys"):
        pub = public_of(dev[block]["privateKeyPem"])
        if pub is None:
            continue  # no openssl here: the pair is not compared
        check(pub == dev[block]["publicKeyPem"].strip(),
              f"values-dev.yaml: {block}.publicKeyPem is not the public key of {block}.privateKeyPem "
              f"(`openssl pkey -in key.pem -pubout`)")
    check(dev["tokenKeys"]["privateKeyPem"] != dev["internalKeys"]["privateKeyPem"], "values-dev.yaml: the two key pairs must differ")


def check_images() -> None:
    """The chart pulls the images scripts/images.sh builds, as the user they run as."""
    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    repositories = {values[c]["image"]["repository"] for c in ("user", "product", "order", "payment", "operator")}
    script = ROOT / "scripts" / "images.sh"
    if script.is_file():
        built = re.search(r"^ALL=\(([^)]*)\)", script.read_text(), re.M)
        check(bool(built) and set(built.group(1).split()) == repositories,
              f"the chart's image repositories {sorted(repositories)} must be the images scripts/images.sh builds "
              f"({built and built.group(1)})")
    containerfile = ROOT / "images" / "Containerfile"
    if containerfile.is_file():
        user = re.search(r"^USER\s+(\d+)(?::(\d+))?", containerfile.read_text(), re.M)
        pod = values["podSecurityContext"]
        check(bool(user) and int(user.group(1)) == pod["runAsUser"] and int(user.group(2) or user.group(1)) == pod["runAsGroup"],
              f"podSecurityContext runs as {pod['runAsUser']}:{pod['runAsGroup']}, images/Containerfile as {user and user.group(0)}")
