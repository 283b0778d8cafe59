#!/usr/bin/env bash
# The Apache Kafka broker of the tests and the benchmark: one KRaft node that is broker
# and controller, run from Maven Central jars (scripts/kafka/pom.xml names the version).
#
#   scripts/kafka.sh fetch      # the jars into $GOODSMALL_CACHE/kafka-<version>/, once; prints that folder
#   scripts/kafka.sh run DIR    # the broker in the foreground, its data in DIR
#
# `run` on a new DIR picks two free loopback ports, writes DIR/server.properties and
# formats DIR/data; on a DIR it has run in before it starts the same broker again on
# the same data and ports (a restart after a crash). The client port is in DIR/port.
# The broker logs to stdout; the line "Kafka Server started" means it takes requests.
# Settings: KAFKA_HEAP (default 512m), GOODSMALL_CACHE (default ~/.cache/goodsmall),
# KAFKA_HOST (default 127.0.0.1): the address clients reach and the broker advertises;
# pods of the test cluster need the node's address (scripts/cluster.sh).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
POM="$HERE/kafka/pom.xml"
CACHE="${GOODSMALL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/goodsmall}"
VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM")"
JARS="$CACHE/kafka-$VERSION"

die() { printf '[kafka.sh] %s\n' "$*" >&2; exit 1; }

fetch() {
  [ -f "$JARS/.complete" ] && return 0
  command -v java >/dev/null || die "java is missing: apt-get install -y openjdk-17-jre-headless"
  command -v mvn >/dev/null || die "mvn is missing: apt-get install -y maven"
  printf '[kafka.sh] fetching Apache Kafka %s jars from Maven Central into %s (once)\n' "$VERSION" "$JARS" >&2
  rm -rf "$JARS.partial"; mkdir -p "$JARS.partial"
  mvn -q -B -f "$POM" dependency:copy-dependencies -DoutputDirectory="$JARS.partial" >&2 \
    || die "mvn could not fetch the Kafka jars (see above); retry: mvn -f $POM dependency:copy-dependencies"
  rm -rf "$JARS"; mv "$JARS.partial" "$JARS"; touch "$JARS/.complete"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

configure() { # DIR: server.properties, log4j2.properties and a formatted data dir
  local dir="$1" port controller host="${KAFKA_HOST:-127.0.0.1}"
  port="$(free_port)"; controller="$(free_port)"
  mkdir -p "$dir/data"
  cat >"$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller
listeners=PLAINTEXT://$host:$port,CONTROLLER://127.0.0.1:$controller
advertised.listeners=PLAINTEXT://$host:$port
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/data
# One node: internal topics cannot have more replicas than that.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
# Topics are created by the services (admin CreateTopics), as in production.
auto.create.topics.enable=false
# Tests start and stop many consumer groups: do not hold a new group back 3 s.
group.initial.rebalance.delay.ms=0
# Tests use short session timeouts so a killed member's partitions move quickly.
group.consumer.min.session.timeout.ms=1000
group.min.session.timeout.ms=1000
PROPS
  cat >"$dir/log4j2.properties" <<'PROPS'
rootLogger.level=WARN
rootLogger.appenderRef.stdout.ref=STDOUT
appender.stdout.type=Console
appender.stdout.name=STDOUT
appender.stdout.layout.type=PatternLayout
appender.stdout.layout.pattern=[%d] %p %m (%c)%n
logger.started.name=kafka.server.KafkaRaftServer
logger.started.level=INFO
PROPS
  local id
  id="$(java -Xmx64m -cp "$JARS/*" kafka.tools.StorageTool random-uuid)"
  java -Xmx128m -cp "$JARS/*" kafka.tools.StorageTool format -t "$id" -c "$dir/server.properties" >"$dir/format.log" 2>&1 \
    || { cat "$dir/format.log" >&2; die "kafka.tools.StorageTool format failed in $dir"; }
  echo "$port" >"$dir/port"
}

run() {
  local dir="${1:?usage: kafka.sh run DIR}"
  fetch
  mkdir -p "$dir"; dir="$(cd "$dir" && pwd)"
  [ -f "$dir/port" ] || configure "$dir"
  # A small heap and the serial collector: a test broker on 2 shared cores.
  exec java -Xms"${KAFKA_HEAP:-512m}" -Xmx"${KAFKA_HEAP:-512m}" -XX:+UseSerialGC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$dir/log4j2.properties" -cp "$JARS/*" kafka.Kafka "$dir/server.properties"
}

case "${1:-}" in
  fetch) fetch; echo "$JARS" ;;
  run) shift; run "$@" ;;
  *) die "usage: kafka.sh fetch | kafka.sh run DIR" ;;
esac
