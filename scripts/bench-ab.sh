#!/usr/bin/env bash
# Side-by-side CPU per purchase of several builds (or settings) of the shop, in one stack.
# A single bench.sh run swings by more than most changes (the raw script's own rate moved
# 9 % between two quiet runs), so compare builds here instead: Redis, MariaDB and Kafka
# start once, a first round warms them (the broker's JIT) and is not reported, then each
# build in turn runs on a fresh database set, Redis database and Kafka namespace: WARM
# seconds of `goodsmall-bench load`, then SECS measured seconds, then the saga drains.
# One line per build: purchases in the window and each process's CPU per purchase (ms,
# from /proc, the saga's drain included), as bench.sh's ledger counts it. Alternate the
# builds (A B A B) to see the noise.
#
#   scripts/bench-ab.sh /tmp/goodsmall-before target/release/goodsmall /tmp/goodsmall-before target/release/goodsmall
#   scripts/bench-ab.sh target/release/goodsmall@GOODSMALL_ORDER__GROUP_COMMITS=2 target/release/goodsmall
#
# A build is a shop binary, optionally followed by @VAR=value settings for it. Settings:
# SECS=15, WARM=6 (the first, unreported round: 25), CONCURRENCY=64; BENCH_DIR keeps logs;
# PERF=1 records each measured round's shop with `perf record --call-graph dwarf` (BENCH_DIR/perfN.data).
# Needs the release goodsmall-bench (cargo build --release -p goodsmall-bench) and the
# servers bench.sh uses (scripts/test.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
[ $# -ge 1 ] || { sed -n '2,18p' "$0" >&2; exit 2; }
SECS="${SECS:-15}"
WARM="${WARM:-6}"
CONCURRENCY="${CONCURRENCY:-64}"
BENCH_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/goodsmall-bench"
[ -x "$BENCH_BIN" ] || { echo "no $BENCH_BIN: cargo build --release -p goodsmall-bench" >&2; exit 1; }
for build in "$@"; do
  [ -x "${build%%@*}" ] || { echo "no shop binary ${build%%@*}" >&2; exit 1; }
done

say() { printf '[bench-ab] %s\n' "$*" >&2; }
if [ -n "${BENCH_DIR:-}" ]; then RUN_DIR="$BENCH_DIR"; rm -rf "$RUN_DIR"; mkdir -p "$RUN_DIR"; KEEP=1
else RUN_DIR="$(mktemp -d -t goodsmall-ab.XXXXXX)"; KEEP=; fi
pids=() # every server started (scripts/lib/servers.sh appends to it)
shop_pid=
cleanup() {
  if [ -n "$shop_pid" ]; then kill "$shop_pid" 2>/dev/null || true; wait "$shop_pid" 2>/dev/null || true; fi
  stop_servers
  if [ -z "$KEEP" ]; then rm -rf "$RUN_DIR"; fi
}
trap cleanup EXIT INT TERM
# shellcheck source=scripts/lib/servers.sh
. "$ROOT/scripts/lib/servers.sh"
start_redis
start_mariadb --innodb-flush-log-at-trx-commit=1 --innodb-buffer-pool-size=512M --performance-schema=ON
export KAFKA_HEAP=1g
start_kafka
SHOP_PORT="$(free_port)"
BASE_URL="http://127.0.0.1:$SHOP_PORT"
export BASE_URL

db_url() { echo "mysql://root@127.0.0.1:$MYSQL_PORT/ab$1_$2"; } # round, service
start_shop() { # build round
  local spec build settings=()
  IFS=@ read -r -a spec <<<"$1"
  build="${spec[0]}"; settings=("${spec[@]:1}")
  env "${settings[@]}" GOODSMALL_DATA_DIR="$RUN_DIR/shop$2" GOODSMALL_DEMO=false GOODSMALL_HTTP__PORT="$SHOP_PORT" \
    GOODSMALL_KAFKA__BROKERS="127.0.0.1:$KAFKA_PORT" GOODSMALL_KAFKA__NAMESPACE="ab$2" \
    GOODSMALL_REDIS__URL="redis://127.0.0.1:$REDIS_PORT/$2" \
    GOODSMALL_USER__DATABASE__URL="$(db_url "$2" user)" GOODSMALL_PRODUCT__DATABASE__URL="$(db_url "$2" product)" \
    GOODSMALL_ORDER__DATABASE__URL="$(db_url "$2" order)" GOODSMALL_PAYMENT__DATABASE__URL="$(db_url "$2" payment)" \
    GOODSMALL_PAYMENT__SIMULATED_PSP__LATENCY_MILLIS=0 GOODSMALL_LOG__FILTER=warn "$build" >>"$RUN_DIR/shop.log" 2>&1 &
  shop_pid=$!
  wait_for shop curl -fsS "$BASE_URL/readyz"
}
stop_shop() { kill "$shop_pid"; wait "$shop_pid" 2>/dev/null || true; shop_pid=; }
ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
backlog() { # round → orders without their payment yet
  mariadb --no-defaults -uroot -h127.0.0.1 -P"$MYSQL_PORT" -N -e \
    "SELECT (SELECT COUNT(*) FROM ab$1_order.orders) - (SELECT COUNT(*) FROM ab$1_payment.payments)"
}
load() { # round seconds [out]
  "$BENCH_BIN" load --sale-id "$SALE" --tokens-file "$RUN_DIR/tokens$1.json" --concurrency "$CONCURRENCY" \
    --duration-secs "$2" ${3:+--out "$3"}
}

round=0
echo "build: purchases; CPU ms per purchase: shop redis mariadb kafka generator = all"
for build in "${1%%@*}" "$@"; do
  round=$((round + 1))
  start_shop "$build" "$round"
  SALE="$("$BENCH_BIN" prepare --private-key-file "$RUN_DIR/shop$round/jwt-ed25519.key" --stock 10000000 \
    --per-user-limit 1000 --shoppers 5000 --first-shopper-id 1000000 --tokens-out "$RUN_DIR/tokens$round.json" 2>>"$RUN_DIR/prepare.log")"
  load "$round" "$([ "$round" = 1 ] && echo 25 || echo "$WARM")" >/dev/null
  while [ "$(backlog "$round")" -gt 0 ]; do sleep 0.2; done
  if [ "$round" = 1 ]; then stop_shop; continue; fi
  procs=("$shop_pid" "$redis_pid" "$mysql_pid" "$kafka_pid")
  before=(); for p in "${procs[@]}"; do before+=("$(ticks "$p")"); done
  perf_pid=
  if [ -n "${PERF:-}" ]; then
    perf record -q -F 499 --call-graph dwarf,16384 -o "$RUN_DIR/perf$round.data" -p "$shop_pid" >/dev/null 2>&1 &
    perf_pid=$!
  fi
  TIMEFORMAT='%U %S'
  { time load "$round" "$SECS" "$RUN_DIR/round$round.json" >"$RUN_DIR/round$round.log" 2>&1; } 2>"$RUN_DIR/generator$round"
  if [ -n "$perf_pid" ]; then kill -INT "$perf_pid"; wait "$perf_pid" || true; fi
  while [ "$(backlog "$round")" -gt 0 ]; do sleep 0.1; done
  after=(); for p in "${procs[@]}"; do after+=("$(ticks "$p")"); done
  python3 - "$build" "$RUN_DIR/round$round.json" "$RUN_DIR/generator$round" "$(getconf CLK_TCK)" \
    "${before[*]}" "${after[*]}" <<'PY'
import json, sys
build, figures, generator, tck, before, after = sys.argv[1:]
n = json.load(open(figures))["accepted"]
per = [(int(a) - int(b)) / int(tck) * 1000 / n for a, b in zip(after.split(), before.split())]
per.append(sum(map(float, open(generator).read().split())) * 1000 / n)
print(f"{build}: {n}; " + " + ".join(f"{x:.3f}" for x in per) + f" = {sum(per):.3f}")
PY
  stop_shop
done
