#!/usr/bin/env python3
"""The GoodsMall Grafana dashboards, as code: `python3 grafana/dashboards.py` writes
grafana/dashboards/*.json; `--check` fails when the files differ from this code or do
not survive Grafana's schema (grafana-foundation-sdk's `Dashboard.from_json`: every key of
the dashboard, its panels, their Prometheus targets, their plugins' options and field
config, and the template variables must be known to the schema). The observability
test runs every query through a real Prometheus."""

import json
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
OUT = HERE / "dashboards"
PURCHASE = 'route="/api/sales/{id}/purchases"'
DS = {"type": "prometheus", "uid": "${datasource}"}
SLO_SECONDS = 0.05


def target(expr, legend, ref):
    return {"datasource": DS, "expr": expr, "legendFormat": legend, "refId": ref, "range": True}


class Board:
    def __init__(self, uid, title, description):
        self.uid, self.title, self.description = uid, title, description
        self.panels, self.y, self.x, self.row_h = [], 0, 0, 0
        self.sale_variable = False

    def panel(self, title, queries, kind="timeseries", unit="short", width=12, height=8, description=""):
        if self.x + width > 24:
            self.x, self.y = 0, self.y + self.row_h
            self.row_h = 0
        refs = "ABCDEFGH"
        panel = {
            "id": len(self.panels) + 1,
            "type": kind,
            "title": title,
            "description": description,
            "datasource": DS,
            "gridPos": {"h": height, "w": width, "x": self.x, "y": self.y},
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "options": {},
            "targets": [target(q, legend, refs[i]) for i, (q, legend) in enumerate(queries)],
        }
        if kind == "timeseries":
            panel["options"] = {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True}, "tooltip": {"mode": "multi", "sort": "none"}}
        self.panels.append(panel)
        self.x += width
        self.row_h = max(self.row_h, height)
        return self

    def json(self):
        variables = [{"name": "datasource", "label": "Prometheus", "type": "datasource", "query": "prometheus", "current": {}, "hide": 0, "refresh": 1, "options": [], "regex": "", "skipUrlSync": False}]
        if self.sale_variable:
            variables.append({
                "name": "sale_id", "label": "Sale", "type": "query", "datasource": DS,
                "query": {"query": "label_values(goodsmall_sale_remaining, sale_id)", "refId": "sale"},
                "refresh": 2, "includeAll": True, "multi": True, "allValue": ".*", "current": {}, "hide": 0, "options": [], "regex": "", "sort": 3, "skipUrlSync": False,
            })
        return {
            "uid": self.uid, "title": self.title, "description": self.description, "tags": ["goodsmall"],
            "timezone": "browser", "editable": True, "graphTooltip": 1, "refresh": "5s",
            "time": {"from": "now-30m", "to": "now"}, "schemaVersion": 39, "version": 1,
            "templating": {"list": variables},
            "annotations": {"list": []},
            "links": [{"title": "GoodsMall", "type": "dashboards", "tags": ["goodsmall"], "asDropdown": True, "includeVars": True, "keepTime": True}],
            "panels": self.panels,
        }


def rate(metric, by="", selector=""):
    inner = f"rate({metric}{{{selector}}}[$__rate_interval])" if selector else f"rate({metric}[$__rate_interval])"
    return f"sum by ({by}) ({inner})" if by else f"sum({inner})"


def quantile(q, metric, by="", selector=""):
    labels = f"{by}, le" if by else "le"
    sel = f"{{{selector}}}" if selector else ""
    return f"histogram_quantile({q}, sum by ({labels}) (rate({metric}_bucket{sel}[$__rate_interval])))"


def errors_or_zero(metric, by, selector, error_selector):
    """5xx by `by`, 0 (not absent) where there were none."""
    return f"sum by ({by}) (rate({metric}{{{error_selector}}}[$__rate_interval])) or (sum by ({by}) (rate({metric}{{{selector}}}[$__rate_interval])) * 0)"


def drop():
    b = Board("goodsmall-drop", "Drop", "Is this drop healthy? Stock per sale, purchases by outcome, latency against the SLO, saga and payments, the operator's phase, the waiting room.")
    b.sale_variable = True
    sale = 'sale_id=~"$sale_id"'
    b.panel("Stock burn-down", [
        (f"max by (sale_id) (goodsmall_sale_remaining{{{sale}}})", "remaining {{sale_id}}"),
        (f"max by (sale_id) (goodsmall_sale_reserved{{{sale}}})", "reserved {{sale_id}}"),
        (f"max by (sale_id) (goodsmall_sale_sold{{{sale}}})", "sold {{sale_id}}"),
    ], width=12, description="Remaining, reserved (awaiting payment) and sold units; remaining + reserved + sold = stock.")
    b.panel("Stock and limit", [
        (f"max by (sale_id) (goodsmall_sale_stock{{{sale}}})", "stock {{sale_id}}"),
        (f"max by (sale_id) (goodsmall_sale_limit{{{sale}}})", "per-shopper limit {{sale_id}}"),
    ], kind="stat", width=6)
    b.panel("Operator phase per sale", [("max by (flash_sale, phase) (goodsmall_operator_flash_sale_phase) > 0", "{{flash_sale}}: {{phase}}")], kind="stat", width=6)
    b.panel("Warm-up capacity", [
        ('max by (flash_sale, deployment) (goodsmall_operator_warmup_replicas{state="asked"})', "asked {{flash_sale}} {{deployment}}"),
        ('max by (flash_sale, deployment) (goodsmall_operator_warmup_replicas{state="ready"})', "ready {{flash_sale}} {{deployment}}"),
    ], width=12, description="Pods each FlashSale's warm-up asked of order and payment, and how many are Ready; ready below asked while Open is the CapacityNotReady alert.")
    b.panel("Purchases by outcome", [(rate("goodsmall_purchases_total", "outcome"), "{{outcome}}")], unit="reqps", width=12,
            description="accepted, repeated (a retry given its first answer), error (5xx) and every refusal code.")
    b.panel("Purchase latency against the SLO", [
        (quantile(0.5, "goodsmall_http_request_duration_seconds", selector=PURCHASE), "p50"),
        (quantile(0.99, "goodsmall_http_request_duration_seconds", selector=PURCHASE), "p99"),
        (f"vector({SLO_SECONDS})", "SLO (p99)"),
    ], unit="s", width=12)
    b.panel("Purchase 5xx ratio", [(
        f"(sum(rate(goodsmall_http_requests_total{{{PURCHASE}, status=~\"5..\"}}[$__rate_interval])) or vector(0)) / sum(rate(goodsmall_http_requests_total{{{PURCHASE}}}[$__rate_interval]))",
        "5xx ratio")], unit="percentunit", width=8)
    b.panel("Saga lag", [
        ("sum by (group) (max by (group, topic, partition) (goodsmall_kafka_consumer_lag))", "consumer lag {{group}}"),
        ("max by (db) (goodsmall_outbox_oldest_age_seconds)", "oldest outbox row {{db}} (s)"),
    ], width=8)
    b.panel("Payment outcomes", [(rate("goodsmall_payments_total", "outcome"), "{{outcome}}")], unit="ops", width=8)
    b.panel("Sold-out flag answers", [(rate("goodsmall_sold_out_flag_answers_total", "answer"), "{{answer}}")], unit="reqps", width=12)
    b.panel("Order created to terminal state", [
        (quantile(0.5, "goodsmall_order_settle_duration_seconds", by="status"), "p50 {{status}}"),
        (quantile(0.99, "goodsmall_order_settle_duration_seconds", by="status"), "p99 {{status}}"),
    ], unit="s", width=12)
    # The waiting room of each FlashSale that has one (spec.admission), as status.queue shows it.
    b.panel("Waiting room per sale", [
        ('max by (flash_sale) (goodsmall_operator_flash_sale_queue{state="waiting"})', "waiting {{flash_sale}}"),
        ('max by (flash_sale) (goodsmall_operator_flash_sale_queue{state="in_turn"})', "in their turn {{flash_sale}}"),
    ], width=12, description="Shoppers waiting for their turn, and admitted shoppers whose turn is on and who have not bought yet (never more than the units left).")
    b.panel("Admitted and expired turns", [
        ('max by (flash_sale) (goodsmall_operator_flash_sale_queue{state="admitted"})', "admitted {{flash_sale}}"),
        ('max by (flash_sale) (goodsmall_operator_flash_sale_queue{state="expired"})', "expired unused {{flash_sale}}"),
    ], width=12, description="Shoppers admitted so far (its slope is the admission rate, at most admitPerSecond) and turns that ran out without a purchase.")
    return b


def services():
    b = Board("goodsmall-services", "Services", "RED per service and route; database pools and queries; Redis; the stock engine and group commit.")
    http = "goodsmall_http_requests_total"
    b.panel("Request rate by route", [(rate(http, "job, route"), "{{job}} {{route}}")], unit="reqps", width=12)
    b.panel("5xx rate by route", [(errors_or_zero(http, "job, route", 'route!=""', 'status=~"5.."'), "{{job}} {{route}}")], unit="reqps", width=12)
    b.panel("p99 latency by route", [(quantile(0.99, "goodsmall_http_request_duration_seconds", by="job, route"), "{{job}} {{route}}")], unit="s", width=12)
    b.panel("Targets up", [('up{job=~"goodsmall.*"}', "{{job}} {{instance}}")], kind="stat", width=12)
    b.panel("Database pool connections", [("max by (job, db, state) (goodsmall_db_pool_connections)", "{{db}} {{state}}")], width=12)
    b.panel("Database query p99", [(quantile(0.99, "goodsmall_db_query_duration_seconds", by="db, query"), "{{db}} {{query}}")], unit="s", width=12)
    b.panel("Redis operations", [(rate("goodsmall_kv_operations_total", "op, outcome"), "{{op}} {{outcome}}")], unit="ops", width=8)
    b.panel("Redis connection up", [("min by (job) (goodsmall_kv_connection_up)", "{{job}}")], kind="stat", width=4)
    b.panel("Redis latency p99", [(quantile(0.99, "goodsmall_kv_operation_duration_seconds", by="op"), "{{op}}")], unit="s", width=12)
    b.panel("Stock engine calls by operation", [(rate("goodsmall_stock_engine_calls_total", "op, outcome"), "{{op}} {{outcome}}")], unit="ops", width=12)
    b.panel("Stock engine latency p99", [(quantile(0.99, "goodsmall_stock_engine_call_duration_seconds", by="op", selector='op=~"reserve|confirm|release|counters"'), "{{op}}")], unit="s", width=12)
    b.panel("Group-commit batch size", [
        (quantile(0.5, "goodsmall_order_commit_batch_size"), "p50"),
        (quantile(0.99, "goodsmall_order_commit_batch_size"), "p99"),
    ], width=12)
    b.panel("Group-commit latency", [(quantile(0.99, "goodsmall_order_commit_duration_seconds", by="outcome"), "p99 {{outcome}}")], unit="s", width=12)
    b.panel("Verification mails", [(rate("goodsmall_mail_deliveries_total", "outcome"), "{{outcome}}")], unit="ops", width=12)
    return b


def saga():
    b = Board("goodsmall-saga", "Saga and Kafka", "The order → payment saga: outbox backlog and relay, consumer lag, handler retries, time to a terminal state, orphan sweeps.")
    b.panel("Outbox rows waiting", [("max by (db) (goodsmall_outbox_pending)", "{{db}}")], width=12)
    b.panel("Age of the oldest outbox row", [("max by (db) (goodsmall_outbox_oldest_age_seconds)", "{{db}}")], unit="s", width=12)
    b.panel("Relay publishes and failures", [
        (rate("goodsmall_outbox_published_total", "db"), "published {{db}}"),
        (rate("goodsmall_outbox_publish_failures_total", "db"), "failed passes {{db}}"),
    ], unit="ops", width=12)
    b.panel("Consumer lag per group and partition", [("max by (group, topic, partition) (goodsmall_kafka_consumer_lag)", "{{group}} {{topic}}/{{partition}}")], width=12)
    b.panel("Handler failures and retries by kind", [
        (rate("goodsmall_event_handler_failures_total", "group, kind"), "failed {{group}} {{kind}}"),
        (rate("goodsmall_event_handler_retries_total", "group, kind"), "retried {{group}} {{kind}}"),
    ], unit="ops", width=12)
    b.panel("Orphaned reservations released", [("sum(increase(goodsmall_orphan_reservations_released_total[$__rate_interval]))", "released")], width=12)
    b.panel("Order created to terminal state", [(quantile(0.99, "goodsmall_order_settle_duration_seconds", by="status"), "p99 {{status}}")], unit="s", width=12)
    b.panel("Payment outcomes", [(rate("goodsmall_payments_total", "outcome"), "{{outcome}}")], unit="ops", width=12)
    return b


def operator():
    b = Board("goodsmall-operator", "Operator", "The FlashSale operator: reconciles, errors by reason, duration, sales by phase.")
    b.panel("Reconciles", [("sum(rate(goodsmall_operator_reconciliations_total[$__rate_interval]))", "reconciles/s")], unit="ops", width=12)
    b.panel("Reconcile errors by reason", [(rate("goodsmall_operator_reconcile_errors_total", "reason"), "{{reason}}")], unit="ops", width=12)
    b.panel("Reconcile duration", [
        (quantile(0.5, "goodsmall_operator_reconcile_duration_seconds"), "p50"),
        (quantile(0.99, "goodsmall_operator_reconcile_duration_seconds"), "p99"),
    ], unit="s", width=12)
    b.panel("FlashSales by phase", [("max by (phase) (goodsmall_operator_flash_sales)", "{{phase}}")], width=12)
    b.panel("Phase per FlashSale", [("max by (flash_sale, phase) (goodsmall_operator_flash_sale_phase) > 0", "{{flash_sale}}: {{phase}}")], kind="table", width=24)
    return b


def load_test():
    b = Board("goodsmall-load-test", "Load test", "k6 runs streamed with `k6 run -o experimental-prometheus-rw` (K6_PROMETHEUS_RW_TREND_STATS=p(95),p(99),avg) next to the shop's own figures.")
    b.panel("Virtual users", [("max(k6_vus)", "VUs")], width=8)
    b.panel("k6 request rate", [("sum(rate(k6_http_reqs_total[$__rate_interval]))", "requests/s")], unit="reqps", width=8)
    b.panel("Checks passing", [("avg(k6_checks_rate)", "checks")], unit="percentunit", width=8)
    b.panel("k6 request duration", [
        ("max(k6_http_req_duration_p95)", "p95"),
        ("max(k6_http_req_duration_p99)", "p99"),
    ], unit="s", width=12)
    b.panel("The shop meanwhile", [
        (rate("goodsmall_purchases_total", "outcome"), "{{outcome}}"),
        (quantile(0.99, "goodsmall_http_request_duration_seconds", selector=PURCHASE), "shop p99 (s)"),
    ], width=12)
    return b


BOARDS = {"drop": drop, "services": services, "saga-and-kafka": saga, "operator": operator, "load-test": load_test}


def render():
    return {f"{name}.json": json.dumps(make().json(), indent=2, sort_keys=False) + "\n" for name, make in BOARDS.items()}


# The panel plugins whose options the schema check knows (every panel must be one).
CHECKED_PANEL_TYPES = ("stat", "table", "timeseries")


def schema_problems(name, board):
    """Keys the Grafana schema (grafana-foundation-sdk) does not know, found by a round
    trip. Targets are parsed as Prometheus queries and options as their panel plugin's,
    so a misspelt `expr` or legend setting is caught, not kept as an unknown bag."""
    from grafana_foundation_sdk.cog import runtime
    from grafana_foundation_sdk.models import prometheus, stat, table, timeseries
    from grafana_foundation_sdk.models.dashboard import Dashboard
    runtime.register_dataquery_variant(prometheus.variant_config())
    for plugin in (stat, table, timeseries):
        runtime.register_panelcfg_variant(plugin.variant_config())

    problems = [f"{name}: panel {p['title']!r} is a {p['type']}, which the schema check does not know"
                for p in board["panels"] if p["type"] not in CHECKED_PANEL_TYPES]
    back = Dashboard.from_json(board).to_json()

    def compare(path, original, parsed):
        if isinstance(original, dict):
            if not isinstance(parsed, dict):
                problems.append(f"{name}: {path} is not an object in the schema")
                return
            for key, value in original.items():
                if key not in parsed:
                    problems.append(f"{name}: {path}.{key} is not in Grafana's schema")
                else:
                    compare(f"{path}.{key}", value, parsed[key])
        elif isinstance(original, list) and isinstance(parsed, list):
            if len(original) != len(parsed):
                problems.append(f"{name}: {path} lost items")
            for i, (a, b) in enumerate(zip(original, parsed)):
                compare(f"{path}[{i}]", a, b)

    as_plain = json.loads(json.dumps(back, default=lambda o: o.to_json() if hasattr(o, "to_json") else str(o)))
    compare("dashboard", board, as_plain)
    return problems


def main():
    files = render()
    if "--check" in sys.argv:
        problems = []
        for name, text in files.items():
            path = OUT / name
            if not path.exists() or path.read_text() != text:
                problems.append(f"{path} differs from grafana/dashboards.py (run python3 grafana/dashboards.py)")
            problems += schema_problems(name, json.loads(text))
        if problems:
            print("\n".join(problems))
            sys.exit(1)
        print(f"{len(files)} dashboards match the code and Grafana's schema")
        return
    OUT.mkdir(exist_ok=True)
    for name, text in files.items():
        (OUT / name).write_text(text)
    print(f"wrote {len(files)} dashboards to {OUT}")


if __name__ == "__main__":
    main()
