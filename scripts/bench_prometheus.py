#!/usr/bin/env python3
"""What a Prometheus holds of one scripts/bench.sh run, and where to look at it.

Called by bench.sh (section 8, and on an early exit) with: the Prometheus URL, the mode
(`on` for bench.sh's private one, `url` for one of yours), the run's testid, its start
and end (Unix seconds), the drop's sale id (may be empty), whether the data is kept, the
TSDB folder and the repository root, and `partial` when the run stopped early. Prints the series counts, a graph link, the Grafana
provisioning change and dashboard links, and how to reopen a kept TSDB; exits 1 when k6
streamed nothing or (mode `on`) the shop was never scraped, unless partial."""
import json, sys, time, urllib.parse, urllib.request
prom, mode, testid, start, end, drop_sale, keep, data, root = sys.argv[1:10]
# "partial": bench.sh stopped before its summary; report what arrived, judge nothing.
partial = sys.argv[10:] == ["partial"]
start, end = int(start), int(end)

def api(path, **params):
    url = f"{prom}/api/v1/{path}?" + urllib.parse.urlencode(params)
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:
            body = json.load(answer)
    except Exception as e:
        sys.exit(f"[bench.sh] Prometheus at {prom} did not answer /api/v1/{path}: {e}")
    if body.get("status") != "success":
        sys.exit(f"[bench.sh] Prometheus refused /api/v1/{path} {params}: {body}")
    return body["data"]

def series(selector):  # the series of this run that match
    return api("series", **{"match[]": selector, "start": start, "end": end + 60})

def total(expr):  # the sum of an instant query at the end of the run (0 when empty)
    return sum(float(r["value"][1]) for r in api("query", query=expr, time=end + 1)["result"])

window = f"{end - start + 60}s"
this_run = f'testid="{testid}"'
shop = f'job="goodsmall-shop",{this_run}'
k6_series = len(series(f'{{__name__=~"k6_.+",{this_run}}}'))
shop_series = len(series(f'{{__name__=~"goodsmall_.+",{shop}}}'))
k6_requests = total(f"sum(max_over_time(k6_http_reqs_total{{{this_run}}}[{window}]))")
purchases = total(f"sum(max_over_time(goodsmall_purchases_total{{{shop}}}[{window}]))")
runs = sorted({s.get("run", "?") for s in series(f"k6_http_reqs_total{{{this_run}}}")})

print()
print(f"  Where to look: Prometheus {prom} (this run: testid={testid})")
if partial:
    print("    the run stopped before its summary: this is what arrived until then")
print(f"    it holds {k6_series} k6 series ({k6_requests:.0f} requests; runs: {', '.join(runs) or 'none'})"
      f" and {shop_series} goodsmall series (the shop counted {purchases:.0f} purchase answers, to k6 and goodsmall-bench)")
if mode != "on" and shop_series == 0:
    print("    (no goodsmall series: the Prometheus did not scrape the shop with the job printed at the start)")
failures = []
if k6_series == 0:
    failures.append("k6 streamed nothing into it (remote write errors are in the k6 logs)")
if mode == "on" and shop_series == 0:
    failures.append("it never scraped the shop (see prometheus.log and its /targets page)")

minutes = max(5, (end - start) // 60 + 2)
shown_until = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(end + 30))
def graph(*exprs):
    params = {}
    for i, expr in enumerate(exprs):
        params.update({f"g{i}.expr": expr, f"g{i}.tab": "0", f"g{i}.range_input": f"{minutes}m", f"g{i}.end_input": shown_until})
    return f"{prom}/graph?" + urllib.parse.urlencode(params, quote_via=urllib.parse.quote)

rates = (f'label_replace(sum(rate(k6_http_reqs_total{{{this_run}}}[5s])), "series", "k6 requests/s", "", "")'
         f' or label_replace(sum(rate(goodsmall_purchases_total{{{shop}}}[5s])), "series", "shop purchases/s", "", "")')
latency = f"max by (run) (k6_http_req_duration_p99{{{this_run}}})"
print("    graph (k6 requests/s next to the shop's purchases/s; below, k6's p99 per run):")
print(f"      {graph(rates, latency)}")
print(f"    Grafana: set url: {prom} in grafana/provisioning/datasources/prometheus.yaml, e.g. with")
print(f"      docker run --network host -v {root}/grafana/provisioning:/etc/grafana/provisioning \\")
print(f"        -v {root}/grafana/dashboards:/var/lib/grafana/dashboards/goodsmall grafana/grafana")
span = f"from={start * 1000}&to={(end + 30) * 1000}"
print(f"      then open the dashboards \"Load test\" http://localhost:3000/d/goodsmall-load-test?{span}")
print(f"      and \"Drop\" http://localhost:3000/d/goodsmall-drop?{span}" + (f"&var-sale_id={drop_sale}" if drop_sale else ""))
if mode == "on":
    if keep:
        print(f"    later: the TSDB stays in {data}; reopen it (the links above then on port 9090) with")
        print(f"      prometheus --storage.tsdb.path={data} --config.file=/dev/null \\")
        print("        --storage.tsdb.retention.time=10y --web.listen-address=127.0.0.1:9090")
    else:
        print("    this Prometheus and its data go when bench.sh ends: HOLD=1 keeps it running, BENCH_DIR=<dir> keeps the data")
for failure in [] if partial else failures:
    print(f"\033[1m[bench.sh]\033[0m FAILED: Prometheus {prom}: {failure}", file=sys.stderr)
sys.exit(1 if failures and not partial else 0)
