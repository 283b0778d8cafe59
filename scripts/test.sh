#!/usr/bin/env bash
# Installs what the tests need, starts a private Redis, MariaDB and Kafka broker (tansu)
# on free ports, and runs every test with cargo-nextest. Arguments go to
# `cargo nextest run`.
#   scripts/test.sh                      # everything
#   scripts/test.sh -p goodsmall-shop    # one crate
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m[test.sh]\033[0m %s\n' "$*" >&2; }

# --- 1. Install what is missing --------------------------------------------------
need_apt=()
command -v redis-server >/dev/null || need_apt+=(redis-server)
command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ] || need_apt+=(mariadb-server)
command -v python3 >/dev/null || need_apt+=(python3)
command -v curl >/dev/null || need_apt+=(curl ca-certificates)
python3 -m pip --version >/dev/null 2>&1 || need_apt+=(python3-pip)
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
if ! python3 -c 'import aiosmtpd' 2>/dev/null; then
  say "installing aiosmtpd (the SMTP server the tests send mail through)"
  python3 -m pip install -q aiosmtpd 2>/dev/null || python3 -m pip install -q --break-system-packages aiosmtpd
fi
if ! python3 -c 'import helm_python, kubernetes_validate' 2>/dev/null; then
  say "installing helm-python-sdk and kubernetes-validate (offline chart rendering and manifest validation)"
  python3 -m pip install -q helm-python-sdk kubernetes-validate 2>/dev/null \
    || python3 -m pip install -q --break-system-packages helm-python-sdk kubernetes-validate
fi
if ! cargo nextest --version >/dev/null 2>&1; then
  say "installing cargo-nextest"
  cargo install cargo-nextest --locked
fi

PATH="$PATH:/usr/sbin:${CARGO_HOME:-$HOME/.cargo}/bin"
# tansu: a Kafka-protocol broker in one binary. Its SQLite engine (feature libsql) is
# the one used: the in-memory engine (dynostore) returns nothing when a consumer resumes
# at an offset inside a produced batch, which committed offsets routinely are.
if ! tansu --help 2>/dev/null | grep -q 'Storage engines:.*libsql'; then
  say "installing tansu (the Kafka broker the tests use; a release build, 20-60 minutes on 2 cores, once)"
  cargo install tansu --locked --features dynostore,libsql
fi

# --- 2. Private servers on free ports ---------------------------------------------
RUN_DIR="$(mktemp -d -t goodsmall-test.XXXXXX)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$RUN_DIR"
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_for() { # name, command...
  local name="$1"; shift
  for _ in $(seq 1 150); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  say "$name did not start; its log:"; cat "$RUN_DIR/$name.log" >&2 || true
  exit 1
}

REDIS_PORT="$(free_port)"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --databases 4096 \
  --dir "$RUN_DIR" >"$RUN_DIR/redis.log" 2>&1 &
pids+=($!)
wait_for redis redis-cli -p "$REDIS_PORT" ping

MYSQL_PORT="$(free_port)"
mkdir -p "$RUN_DIR/mysql"
mariadb-install-db --no-defaults --datadir="$RUN_DIR/mysql" --skip-test-db \
  --auth-root-authentication-method=normal >"$RUN_DIR/mariadb-install.log" 2>&1
mariadbd --no-defaults --datadir="$RUN_DIR/mysql" --socket="$RUN_DIR/mysql/sock" --port="$MYSQL_PORT" \
  --bind-address=127.0.0.1 --user="$(id -un)" --max-connections=2000 --innodb-flush-log-at-trx-commit=2 \
  --skip-log-bin >"$RUN_DIR/mariadb.log" 2>&1 &
pids+=($!)
wait_for mariadb mariadb --no-defaults -uroot -h127.0.0.1 -P"$MYSQL_PORT" -e 'SELECT 1'

# Topics are created by the tests (admin CreateTopics); data goes to $RUN_DIR/tansu.db.
KAFKA_PORT="$(free_port)"
(cd "$RUN_DIR" && exec tansu broker --listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
  --advertised-listener-url "tcp://127.0.0.1:$KAFKA_PORT" --storage-engine sqlite://tansu.db) \
  >"$RUN_DIR/tansu.log" 2>&1 &
pids+=($!)
wait_for tansu bash -c "exec 3<>/dev/tcp/127.0.0.1/$KAFKA_PORT"

export TESTKIT_REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
export TESTKIT_MYSQL_URL="mysql://root@127.0.0.1:$MYSQL_PORT"
export TESTKIT_KAFKA_BROKERS="127.0.0.1:$KAFKA_PORT"
say "Redis on $REDIS_PORT, MariaDB on $MYSQL_PORT, Kafka (tansu) on $KAFKA_PORT"

# --- 3. Every test -----------------------------------------------------------------
[ $# -gt 0 ] || set -- --workspace
cargo nextest run --no-fail-fast "$@"
