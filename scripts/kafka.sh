#!/usr/bin/env bash
# A single-node Apache Kafka (KRaft, combined broker + controller) for tests and local
# development, run from Maven Central jars with the machine's Java 17: there is no
# Docker engine here. Loopback only.
#
#   scripts/kafka.sh fetch                       resolve the pinned jars into .tools/kafka/<version> (cached)
#   scripts/kafka.sh start DIR PORT [CTRL_PORT]  format DIR if new, start, wait until ready (no-op when running)
#   scripts/kafka.sh stop DIR                    stop the broker started in DIR (no-op when not running)
#   scripts/kafka.sh classpath                   print the classpath (after fetch)
#   scripts/kafka.sh version                     print the pinned Kafka version
#
# Environment: KAFKA_VERSION (default pinned below), KAFKA_HOME (default .tools/kafka/<version>),
# KAFKA_HEAP (default -Xms128m -Xmx512m), KAFKA_START_TIMEOUT (seconds, default 60),
# KAFKA_EXTRA_CONFIG (lines appended to server.properties; a later line wins).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

# Inside @platformatic/kafka's tested range (Apache Kafka 3.5.0 to 4.2.0); brokers 4.x need Java 17.
KAFKA_VERSION=${KAFKA_VERSION:-4.1.2}
SCALA_VERSION=2.13
LOG4J_VERSION=2.25.3
SLF4J_VERSION=2.0.17
DEPENDENCY_PLUGIN_VERSION=3.8.1
KAFKA_HOME=${KAFKA_HOME:-$root/.tools/kafka/$KAFKA_VERSION}
libs="$KAFKA_HOME/libs"

say() { echo "kafka: $*" >&2; }
die() { say "$*"; exit 1; }

have_java() { command -v java >/dev/null 2>&1; }

fetched() { [ -f "$KAFKA_HOME/.complete" ]; }

cmd_fetch() {
  if fetched; then
    say "Kafka $KAFKA_VERSION jars already in $libs"
    return 0
  fi
  if ! have_java || ! command -v mvn >/dev/null 2>&1; then
    say "java or mvn not found; skipping the jar fetch (the Kafka test tier will be skipped)"
    return 0
  fi
  mkdir -p "$(dirname "$KAFKA_HOME")"
  # Test files may fetch at the same time: one resolves, the others wait and find it done.
  exec 9>"$KAFKA_HOME.lock"
  flock 9
  if fetched; then
    say "Kafka $KAFKA_VERSION jars already in $libs"
    return 0
  fi
  local work
  work=$(mktemp -d "${TMPDIR:-/tmp}/hostgate-kafka-fetch.XXXXXX")
  # shellcheck disable=SC2064
  trap "rm -rf '$work'" RETURN
  # A throw-away pom whose only job is to let Maven resolve the broker's runtime closure.
  cat >"$work/pom.xml" <<POM
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.hostgate</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>0</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_$SCALA_VERSION</artifactId><version>$KAFKA_VERSION</version></dependency>
    <!-- The broker logs through SLF4J; 2.x so that log4j's binding below is found (Kafka's pom says 1.7). -->
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-api</artifactId><version>$SLF4J_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j2-impl</artifactId><version>$LOG4J_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>$LOG4J_VERSION</version></dependency>
  </dependencies>
  <build>
    <plugins>
      <plugin>
        <groupId>org.apache.maven.plugins</groupId>
        <artifactId>maven-dependency-plugin</artifactId>
        <version>$DEPENDENCY_PLUGIN_VERSION</version>
      </plugin>
    </plugins>
  </build>
</project>
POM
  say "resolving Apache Kafka $KAFKA_VERSION from Maven Central into $libs"
  rm -rf "$libs.partial"
  mkdir -p "$KAFKA_HOME"
  local offline=()
  # Re-runs resolve from ~/.m2 without the network when everything is already there.
  if mvn -q -B -Dstyle.color=never -o -f "$work/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$libs.partial" >/dev/null 2>&1; then
    offline=(-o)
  else
    rm -rf "$libs.partial"
    mvn -B -Dstyle.color=never -f "$work/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
      -DoutputDirectory="$libs.partial" >"$work/mvn.log" 2>&1 ||
      { tail -n 40 "$work/mvn.log" >&2; die "Maven could not resolve the Kafka jars"; }
  fi
  [ -f "$libs.partial/kafka_$SCALA_VERSION-$KAFKA_VERSION.jar" ] || die "kafka_$SCALA_VERSION-$KAFKA_VERSION.jar missing after resolution"
  rm -rf "$libs"
  mv "$libs.partial" "$libs"
  echo "$KAFKA_VERSION" >"$KAFKA_HOME/.complete"
  say "fetched $(find "$libs" -name '*.jar' | wc -l) jars${offline:+ (from the local Maven repository)}"
}

classpath() {
  fetched || die "jars not fetched; run scripts/kafka.sh fetch"
  local cp="" jar
  for jar in "$libs"/*.jar; do cp="$cp${cp:+:}$jar"; done
  printf '%s' "$cp"
}

# Alive and still our broker (a stale pid file may name a recycled pid).
pid_alive() {
  [ -f "$1/kafka.pid" ] || return 1
  local pid
  pid=$(cat "$1/kafka.pid")
  kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'kafka.Kafka'
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

java_opts() {
  # Small and quick to start: a test broker never holds much.
  # shellcheck disable=SC2206
  local heap=(${KAFKA_HEAP:--Xms128m -Xmx512m})
  # KAFKA_JVM_TUNING=server (benchmarks): the full JIT and G1 as Kafka's own scripts run a broker;
  # the default stops at C1, which starts fast but runs each request several times slower.
  # shellcheck disable=SC2206
  local tuning=(-XX:+UseSerialGC -XX:TieredStopAtLevel=1)
  [ "${KAFKA_JVM_TUNING:-test}" = server ] && tuning=(-XX:+UseG1GC -XX:MaxGCPauseMillis=20)
  printf '%s\n' "${heap[@]}" "${tuning[@]}" -Xshare:auto \
    -Djava.awt.headless=true -Dlog4j2.configurationFile="$1/log4j2.properties"
}

write_config() {
  local dir=$1 port=$2 ctrl=$3
  cat >"$dir/server.properties" <<CONF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$ctrl
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$ctrl
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$dir/data
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.check.interval.ms=300000
# One network and one request thread (Kafka's defaults are 3 and 8): on a 2-core machine every
# request handed between threads is a wake-up on another core. Fleet bench, alternately, four pairs:
# broker CPU per certificate 3.5-3.7 vs 3.9-4.1 ms at 100/s, 1.5-1.7 vs 1.6-1.8 ms at 200/s.
num.network.threads=1
num.io.threads=1
background.threads=2
# Records up to 16 MiB of value + 64 KiB of key, headers and framing (KafkaBus maxMessageBytes
# default; an evidence message carries an event log of up to 8 MiB). Kafka's defaults stop at ~1 MiB.
message.max.bytes=16842752
replica.fetch.max.bytes=16842752
${KAFKA_EXTRA_CONFIG:-}
CONF
  cat >"$dir/log4j2.properties" <<CONF
status = error
appender.file.type = File
appender.file.name = file
appender.file.fileName = $dir/kafka.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = info
logger.apache.name = org.apache.kafka
logger.apache.level = warn
CONF
}

cmd_start() {
  local dir=${1:?usage: kafka.sh start DIR PORT [CTRL_PORT]} port=${2:?usage: kafka.sh start DIR PORT [CTRL_PORT]}
  local ctrl=${3:-$((port + 1))}
  have_java || die "java not found"
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if pid_alive "$dir"; then
    say "already running in $dir (pid $(cat "$dir/kafka.pid"))"
    wait_ready "$dir" "$(cat "$dir/port")"
    return 0
  fi
  local cp
  cp=$(classpath)
  write_config "$dir" "$port" "$ctrl"
  echo "$port" >"$dir/port"
  local opts
  mapfile -t opts < <(java_opts "$dir")
  if [ ! -f "$dir/data/meta.properties" ]; then
    local id
    # A cluster id is 16 random bytes, URL-safe base64 without padding.
    id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
    java "${opts[@]}" -cp "$cp" kafka.tools.StorageTool format -t "$id" -c "$dir/server.properties" \
      --ignore-formatted >"$dir/format.log" 2>&1 || { cat "$dir/format.log" >&2; die "storage format failed"; }
  fi
  : >"$dir/kafka.log"
  nohup java "${opts[@]}" -cp "$cp" kafka.Kafka "$dir/server.properties" >"$dir/stdout.log" 2>&1 </dev/null &
  echo $! >"$dir/kafka.pid"
  wait_ready "$dir" "$port"
}

wait_ready() {
  local dir=$1 port=$2 deadline=$((SECONDS + ${KAFKA_START_TIMEOUT:-60}))
  while [ $SECONDS -lt $deadline ]; do
    kill -0 "$(cat "$dir/kafka.pid")" 2>/dev/null || { tail -n 30 "$dir/stdout.log" "$dir/kafka.log" >&2 2>/dev/null; die "broker in $dir exited during start"; }
    if grep -q 'Kafka Server started' "$dir/kafka.log" 2>/dev/null && port_open "$port"; then
      say "ready on 127.0.0.1:$port (pid $(cat "$dir/kafka.pid"))"
      return 0
    fi
    sleep 0.1
  done
  die "broker in $dir not ready after ${KAFKA_START_TIMEOUT:-60}s (see $dir/kafka.log)"
}

cmd_stop() {
  local dir=${1:?usage: kafka.sh stop DIR}
  [ -d "$dir" ] || { say "nothing in $dir"; return 0; }
  if ! pid_alive "$dir"; then
    rm -f "$dir/kafka.pid"
    say "not running in $dir"
    return 0
  fi
  local pid i
  pid=$(cat "$dir/kafka.pid")
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 300; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    say "broker $pid ignored SIGTERM for 30 s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$dir/kafka.pid"
  say "stopped (pid $pid)"
}

case "${1:-}" in
fetch) cmd_fetch ;;
start) shift; cmd_start "$@" ;;
stop) shift; cmd_stop "$@" ;;
classpath) classpath; echo ;;
version) echo "$KAFKA_VERSION" ;;
*) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
