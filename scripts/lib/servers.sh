# Private servers on free ports, shared by scripts/test.sh and scripts/bench.sh.
# Source it after defining `say` and setting RUN_DIR (logs and data go there); every
# server started is appended to the `pids` array, for the caller's cleanup.
# SERVERS_HOST (default 127.0.0.1) is the address they serve beside loopback: the test
# cluster's node address (scripts/cluster.sh), so that pods reach them too. Kafka then
# advertises that address only.
SERVERS_HOST="${SERVERS_HOST:-127.0.0.1}"

stop_servers() { # every server started (the `pids` array), waited for
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_for() { # name, command...: retries the command for 15 s, then shows the log and exits
  local name="$1"; shift
  for _ in $(seq 1 150); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  say "$name did not start; its log:"; cat "$RUN_DIR/$name.log" >&2 || true
  exit 1
}

start_redis() { # extra redis-server arguments...; sets REDIS_PORT and redis_pid
  REDIS_PORT="$(free_port)"
  local bind=(--bind 127.0.0.1)
  # Off loopback, Redis refuses clients unless protected mode is off (a private test server).
  [ "$SERVERS_HOST" = 127.0.0.1 ] || bind=(--bind 127.0.0.1 "$SERVERS_HOST" --protected-mode no)
  redis-server --port "$REDIS_PORT" "${bind[@]}" --save '' --appendonly no --dir "$RUN_DIR" "$@" \
    >"$RUN_DIR/redis.log" 2>&1 &
  redis_pid=$!; pids+=("$redis_pid")
  wait_for redis redis-cli -p "$REDIS_PORT" ping
}

start_mariadb() { # extra mariadbd arguments...; sets MYSQL_PORT and mysql_pid
  MYSQL_PORT="$(free_port)"
  mkdir -p "$RUN_DIR/mysql"
  mariadb-install-db --no-defaults --datadir="$RUN_DIR/mysql" --skip-test-db \
    --auth-root-authentication-method=normal >"$RUN_DIR/mariadb-install.log" 2>&1
  mariadbd --no-defaults --datadir="$RUN_DIR/mysql" --socket="$RUN_DIR/mysql/sock" --port="$MYSQL_PORT" \
    --bind-address="$(printf '127.0.0.1\n%s\n' "$SERVERS_HOST" | sort -u | paste -sd,)" --user="$(id -un)" --max-connections=2000 --skip-log-bin "$@" \
    >"$RUN_DIR/mariadb.log" 2>&1 &
  mysql_pid=$!; pids+=("$mysql_pid")
  wait_for mariadb mariadb --no-defaults -uroot -h127.0.0.1 -P"$MYSQL_PORT" -e 'SELECT 1'
  if [ "$SERVERS_HOST" != 127.0.0.1 ]; then
    # Pods connect from their own addresses; root exists only for localhost until now.
    mariadb --no-defaults -uroot -h127.0.0.1 -P"$MYSQL_PORT" \
      -e "CREATE USER 'root'@'%'; GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION"
  fi
}

# Apache Kafka (KRaft, one node) from Maven Central jars, through scripts/kafka.sh (which
# fetches the jars once into a cache outside the clone). Sets KAFKA_PORT, KAFKA_DIR and
# kafka_pid. KAFKA_HEAP sets the broker's heap (512m).
KAFKA_SH="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/kafka.sh"
start_kafka() {
  "$KAFKA_SH" fetch >/dev/null
  KAFKA_DIR="$RUN_DIR/kafka"
  KAFKA_HOST="$SERVERS_HOST" "$KAFKA_SH" run "$KAFKA_DIR" >"$RUN_DIR/kafka.log" 2>&1 &
  kafka_pid=$!; pids+=("$kafka_pid")
  for _ in $(seq 1 600); do
    if grep -q 'Kafka Server started' "$RUN_DIR/kafka.log"; then KAFKA_PORT="$(cat "$KAFKA_DIR/port")"; return 0; fi
    kill -0 "$kafka_pid" 2>/dev/null || break
    sleep 0.1
  done
  say "the Kafka broker did not start within 60 s; its log:"; cat "$RUN_DIR/kafka.log" >&2
  exit 1
}
