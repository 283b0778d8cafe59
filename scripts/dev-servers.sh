#!/usr/bin/env bash
# MariaDB, Redis and Apache Kafka for trying the chart on a one-node cluster
# (scripts/cluster.sh): the same private servers the tests use (scripts/lib/servers.sh),
# listening on the node's address so that pods reach them, and a values file that
# points the chart at them. Runs in the foreground until
# Ctrl-C or SIGTERM; the servers' data goes with them.
#
#   scripts/dev-servers.sh --values servers.yaml    # then: helm install … -f helm/goodsmall/values-dev.yaml -f servers.yaml
#
# Settings: SERVERS_HOST (default: the cluster's node address, else 127.0.0.1).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m[dev-servers.sh]\033[0m %s\n' "$*" >&2; }
values=""
while [ $# -gt 0 ]; do
  case "$1" in
    --values) values="${2:?--values needs a file}"; shift 2 ;;
    -h | --help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) say "unknown argument $1 (see --help)"; exit 1 ;;
  esac
done
[ -n "$values" ] || { say "--values FILE is required: the chart values this writes"; exit 1; }
for program in redis-server mariadbd java; do
  command -v "$program" >/dev/null || [ -x "/usr/sbin/$program" ] \
    || { say "$program is missing: apt-get install -y redis-server mariadb-server openjdk-17-jre-headless"; exit 1; }
done
PATH="$PATH:/usr/sbin"
if [ -z "${SERVERS_HOST:-}" ]; then
  SERVERS_HOST="$(scripts/cluster.sh node-ip 2>/dev/null || true)"
  SERVERS_HOST="${SERVERS_HOST:-127.0.0.1}"
fi

RUN_DIR="$(mktemp -d -t goodsmall-dev-servers.XXXXXX)"
pids=()
cleanup() {
  if declare -F stop_servers >/dev/null; then stop_servers; fi
  rm -rf "$RUN_DIR"
}
trap cleanup EXIT INT TERM
# shellcheck source=lib/servers.sh
. scripts/lib/servers.sh
start_redis
start_mariadb
start_kafka

mysql="mysql://root@$SERVERS_HOST:$MYSQL_PORT"
umask 077
cat >"$values" <<YAML
# Written by scripts/dev-servers.sh for this run of its servers.
mysql:
  existingSecret: ""
  createIfMissing: true
  urls: { user: "$mysql/goodsmall_user", product: "$mysql/goodsmall_product", order: "$mysql/goodsmall_order", payment: "$mysql/goodsmall_payment" }
redis: { existingSecret: "", url: "redis://$SERVERS_HOST:$REDIS_PORT/0" }
kafka: { brokers: "$SERVERS_HOST:$KAFKA_PORT" }
networkPolicy:
  egress:
    mysql: { ports: [{ port: $MYSQL_PORT }] }
    redis: { ports: [{ port: $REDIS_PORT }] }
    kafka: { ports: [{ port: $KAFKA_PORT }] }
YAML
say "MariaDB on $SERVERS_HOST:$MYSQL_PORT, Redis on $SERVERS_HOST:$REDIS_PORT, Kafka on $SERVERS_HOST:$KAFKA_PORT"
say "chart values in $values; Ctrl-C or SIGTERM (kill %N when started with &) stops the servers (their data goes with them)"
wait "${pids[@]}"
