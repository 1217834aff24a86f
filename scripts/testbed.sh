#!/usr/bin/env bash
# Local test bed for milvus-cdc: etcd, Kafka (KRaft) or Pulsar (standalone), and two or three
# Milvus standalone processes on 127.0.0.1, no containers. See docs/testbed.md.
#
#   scripts/testbed.sh up [--replica] [--lite] [--mq kafka|pulsar]
#                                       start (or reuse) the bed and wait until healthy; --replica
#                                       adds REPLICA, --lite a milvus-lite 3.x server (a current-
#                                       protocol target, docs/testbed.md); --mq pulsar runs a
#                                       Pulsar broker instead of Kafka and points the Milvus
#                                       instances at it (the choice is kept in the run dir; `up`
#                                       refuses a running bed that uses the other one)
#   scripts/testbed.sh down             stop the processes this bed started (by PID), remove run data
#   scripts/testbed.sh status           one line per component; exit 0 only if all started ones are healthy
#   scripts/testbed.sh env              KEY=VALUE lines for tests and tools
#
# One component of a running bed (COMPONENT: etcd, kafka or pulsar, source, target, replica, lite);
# for fault tests:
#   scripts/testbed.sh stop COMPONENT [--kill]     SIGTERM with the usual grace, then SIGKILL
#                                                  (--kill: SIGKILL at once). Data and config stay.
#   scripts/testbed.sh start COMPONENT             start it again on its data and config; waits until healthy
#   scripts/testbed.sh restart COMPONENT [--kill]  stop, then start
#   scripts/testbed.sh freeze COMPONENT            SIGSTOP: port open but nothing answers; state kept
#   scripts/testbed.sh thaw COMPONENT              SIGCONT
#
# Environment:
#   MILVUS_CDC_CACHE        download cache (default $HOME/.cache/milvus-cdc)
#   TESTBED_RUN_DIR         run data, pidfiles, logs (default <repo>/.testbed)
#   TESTBED_PORT_OFFSET     added to every port (default 0)
#   TESTBED_HEALTH_TIMEOUT  seconds to wait for each Milvus /healthz (default 300)
#   TESTBED_MILVUS_VERSION  PyPI `milvus` wheel to unpack (default 2.3.5, see docs/milvus-notes.md)
#   TESTBED_KAFKA_VERSION   Kafka jars from Maven Central (default 3.9.1)
#   TESTBED_MQ              kafka or pulsar: the message queue of a new bed, as --mq (default: a
#                           running bed keeps its own, a new one gets kafka)
#   TESTBED_PULSAR_VERSION  Pulsar broker jars from Maven Central (default 4.0.7)
#   TESTBED_MILVUS_STOP_TIMEOUT  SIGTERM grace for Milvus before SIGKILL (default 15)
#   TESTBED_TIME_TICK_MS    Milvus proxy.timeTickInterval of a new bed (default 500; Milvus's own is 200)
#   TESTBED_LITE            1: `up` also starts milvus-lite, as --lite does
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${MILVUS_CDC_CACHE:-$HOME/.cache/milvus-cdc}
RUN=${TESTBED_RUN_DIR:-$REPO/.testbed}
OFF=${TESTBED_PORT_OFFSET:-0}
HEALTH_TIMEOUT=${TESTBED_HEALTH_TIMEOUT:-300}
MILVUS_VERSION=${TESTBED_MILVUS_VERSION:-2.3.5}
KAFKA_VERSION=${TESTBED_KAFKA_VERSION:-3.9.1}
PULSAR_VERSION=${TESTBED_PULSAR_VERSION:-4.0.7}
DML_CHANNELS=4
TIME_TICK_MS=${TESTBED_TIME_TICK_MS:-500}
MARKER=.milvus-cdc-testbed   # only a run dir holding this file is ever deleted

# ---------------------------------------------------------------- ports (testbed.md §1)
ETCD_PORT=$((23790 + OFF));  ETCD_PEER_PORT=$((23800 + OFF))
KAFKA_PORT=$((19092 + OFF)); KAFKA_CTRL_PORT=$((19093 + OFF))
# Pulsar standalone: broker (binary protocol), web/admin REST, its one bookie. It opens nothing
# else with --no-functions-worker --no-stream-storage (stream storage would take 4181).
PULSAR_PORT=$((16650 + OFF)); PULSAR_WEB_PORT=$((18080 + OFF)); PULSAR_BK_PORT=$((13181 + OFF))
CDC_PORT=$((8444 + OFF))
LITE_PORT=$((19830 + OFF))   # milvus-lite (optional): one gRPC port, nothing else
# Milvus instances: name, port shift (+100 per instance), etcd root = channel prefix, ttMsgEnabled.
# rootCoord uses 22100 (+shift), not Milvus's default 53100: 53100-53300 lie in Linux's ephemeral
# range (32768-60999) and an outgoing connection grabbed one during a test start. Keep every port
# below that range (TESTBED_PORT_OFFSET < 8000).
MILVUS_INSTANCES=(source target replica)
declare -A M_SHIFT=([source]=0 [target]=100 [replica]=200)
declare -A M_ROOT=([source]=cdcsrc [target]=cdctgt [replica]=cdcrep)
declare -A M_TT=([source]=true [target]=true [replica]=false)

milvus_ports() { # every port one instance listens on (metrics/healthz first)
  local s=$((M_SHIFT[$1] + OFF))
  echo $((9091 + s)) $((19530 + s)) $((19529 + s)) $((22100 + s)) $((19531 + s)) \
       $((21123 + s)) $((21121 + s)) $((13333 + s)) $((21124 + s))
}
metrics_port() { echo $((9091 + M_SHIFT[$1] + OFF)); }
proxy_port()   { echo $((19530 + M_SHIFT[$1] + OFF)); }

# ---------------------------------------------------------------- small helpers
log()  { printf '[testbed %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die()  { printf '[testbed] ERROR: %s\n' "$*" >&2; exit 1; }
now()  { date +%s; }

venv_dir() { # keyed by the requirements file and the interpreter version
  local key
  key=$( { cat "$REPO/testbed/requirements.txt"; python3 -c 'import sys; print(sys.version)'; } \
         | sha256sum | cut -c1-12)
  echo "$CACHE/venv-$key"
}
PY=$(venv_dir)/bin/python
lite_venv_dir() { # the milvus-lite venv, keyed the same way by its own requirements file
  local key
  key=$( { cat "$REPO/testbed/requirements-lite.txt"; python3 -c 'import sys; print(sys.version)'; } \
         | sha256sum | cut -c1-12)
  echo "$CACHE/venv-lite-$key"
}
LITE_PY=$(lite_venv_dir)/bin/python

pid_of() { cat "$RUN/$1/pid" 2>/dev/null || true; }

# The bed's message queue (kafka or pulsar): fixed by `up` in $RUN/mq; before that TESTBED_MQ.
bed_mq() {
  if [[ -f "$RUN/mq" ]]; then cat "$RUN/mq"; else echo "${TESTBED_MQ:-kafka}"; fi
}
MQ=$(bed_mq)
[[ $MQ == kafka || $MQ == pulsar ]] || die "message queue '$MQ' unknown (kafka or pulsar)"

# A component is running when its pidfile names a live process whose cwd is the component
# dir (every process is started from there; this guards against PID reuse).
is_running() {
  local pid; pid=$(pid_of "$1")
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null \
    && [[ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" == "$(cd "$RUN/$1" 2>/dev/null && pwd -P)" ]]
}

# PIDs listening on a TCP port, any address ("" if free or not visible)
port_pids() { ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u || true; }
port_busy() { [[ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]]; }

# Fail fast if a port needed by $1 is taken by anything (we only call this before starting $1).
check_ports_free() {
  local comp=$1; shift
  local p pids who
  for p in "$@"; do
    if port_busy "$p"; then
      pids=$(port_pids "$p" | tr '\n' ' ')
      who=""
      for pid in $pids; do who+=" pid $pid ($(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | cut -c1-80))"; done
      die "port $p needed by $comp is already in use by a process that is not part of this bed:${who:- (owner not visible)}. Stop it, or shift the bed with TESTBED_PORT_OFFSET=<n>."
    fi
  done
}

# wait_for <what> <timeout s> <component whose pid must stay alive|-> <command...>
wait_for() {
  local what=$1 timeout=$2 comp=$3; shift 3
  local t0; t0=$(now)
  until "$@" >/dev/null 2>&1; do
    if [[ "$comp" != - ]] && ! is_running "$comp"; then
      show_logs "$comp"; die "$comp exited while waiting for $what"
    fi
    if (( $(now) - t0 >= timeout )); then
      [[ "$comp" != - ]] && show_logs "$comp"
      die "timed out after ${timeout}s waiting for $what"
    fi
    sleep 1
  done
  log "$what: ready after $(( $(now) - t0 ))s"
}

show_logs() { # last lines of every log of a component, on failure
  local f
  for f in "$RUN/$1"/*.log "$RUN/$1"/logs/*; do
    [[ -f "$f" ]] || continue
    echo "----- tail -n 60 $f" >&2; tail -n 60 "$f" >&2
  done
}

# start_bg <component> <command...>: run from the component dir, detached into its own session
# (Ctrl-C in the calling terminal does not reach it), output to <component>/stdout.log.
start_bg() {
  local comp=$1; shift
  ( cd "$RUN/$comp" && exec setsid "$@" >stdout.log 2>&1 </dev/null ) &
  echo $! > "$RUN/$comp/pid"
}

alive() { # a live, non-zombie process
  [[ -e /proc/$1 ]] && [[ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]]
}

# stop_components <timeout s> <component>...: SIGTERM each, wait up to the timeout for all,
# then SIGKILL the PIDs still alive. Only PIDs from our pidfiles are ever signalled.
stop_components() {
  local timeout=$1; shift
  local c pid pids=() t0
  for c in "$@"; do
    pid=$(pid_of "$c")
    if [[ -n "$pid" ]] && is_running "$c"; then
      log "stopping $c (pid $pid)"; kill -TERM "$pid" 2>/dev/null || true; pids+=("$pid")
      kill -CONT "$pid" 2>/dev/null || true   # a frozen process acts on SIGTERM only once continued
    fi
  done
  t0=$(now)
  for pid in "${pids[@]}"; do
    while alive "$pid" && (( $(now) - t0 < timeout )); do sleep 0.5; done
  done
  for pid in "${pids[@]}"; do
    if alive "$pid"; then
      log "pid $pid still alive after ${timeout}s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  for pid in "${pids[@]}"; do
    t0=$(now); while alive "$pid" && (( $(now) - t0 < 20 )); do sleep 0.5; done
    alive "$pid" && log "WARNING: pid $pid survived SIGKILL"
  done
  for c in "$@"; do rm -f "$RUN/$c/pid"; done
}

# ---------------------------------------------------------------- installs (cached by version)
ensure_tools() {
  local t missing=()
  for t in etcd etcdctl java mvn kcat xz unzip curl ss setsid python3; do
    command -v "$t" >/dev/null 2>&1 || missing+=("$t")
  done
  ((${#missing[@]} == 0)) || die "missing tools: ${missing[*]} (run scripts/install-deps.sh)"
}

ensure_venv() {
  local v; v=$(venv_dir)
  [[ -f "$v/.complete" ]] && return 0
  log "creating Python venv $v"
  rm -rf "$v"
  python3 -m venv "$v"
  "$v/bin/python" -m pip install -q --disable-pip-version-check -r "$REPO/testbed/requirements.txt"
  "$v/bin/python" -W ignore -c 'import pymilvus, confluent_kafka, pulsar, yaml, pytest' \
    || die "venv $v: imports failed"
  touch "$v/.complete"
}

# milvus-lite needs Python >= 3.10 and a current pymilvus, so it gets a venv of its own
ensure_lite_venv() {
  local v; v=$(lite_venv_dir)
  [[ -f "$v/.complete" ]] && return 0
  python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
    || die "milvus-lite needs Python >= 3.10 (python3 is $(python3 -V 2>&1))"
  log "creating the milvus-lite venv $v"
  rm -rf "$v"
  python3 -m venv "$v"
  "$v/bin/python" -m pip install -q --disable-pip-version-check -r "$REPO/testbed/requirements-lite.txt"
  "$v/bin/python" -W ignore -c 'import milvus_lite, pymilvus.grpc_gen.milvus_pb2_grpc' \
    || die "venv $v: imports failed"
  [[ -x "$v/bin/milvus-lite" ]] || die "venv $v: no milvus-lite command"
  touch "$v/.complete"
}

MILVUS_HOME=$CACHE/milvus-$MILVUS_VERSION
ensure_milvus() {
  [[ -f "$MILVUS_HOME/.complete" ]] && return 0
  log "unpacking the Milvus $MILVUS_VERSION binary from the PyPI wheel into $MILVUS_HOME"
  mkdir -p "$CACHE/wheels"
  # the wheel is a plain zip; only the manylinux x86_64 build carries a Linux binary
  python3 -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
    --platform manylinux2014_x86_64 -d "$CACHE/wheels" "milvus==$MILVUS_VERSION"
  local whl; whl=$(ls "$CACHE"/wheels/milvus-"$MILVUS_VERSION"-*manylinux*x86_64.whl | head -n1)
  rm -rf "$MILVUS_HOME"; mkdir -p "$MILVUS_HOME/xz" "$MILVUS_HOME/bin" "$MILVUS_HOME/tmpl"
  unzip -q -o -j "$whl" 'milvus/data/bin/*' -d "$MILVUS_HOME/xz"
  unzip -q -o -j "$whl" 'milvus/data/config.yaml.template' 'milvus/data/glog.conf' -d "$MILVUS_HOME/tmpl"
  local f
  for f in "$MILVUS_HOME"/xz/*.lzma; do   # xz streams despite the .lzma suffix
    xz -dc "$f" > "$MILVUS_HOME/bin/$(basename "${f%.lzma}")"
  done
  rm -rf "$MILVUS_HOME/xz"
  chmod +x "$MILVUS_HOME/bin/milvus"
  local nf; nf=$(LD_LIBRARY_PATH="$MILVUS_HOME/bin" ldd "$MILVUS_HOME/bin/milvus" | grep 'not found' || true)
  [[ -z "$nf" ]] || die "Milvus binary has unresolved libraries (add the Debian runtime package to scripts/install-deps.sh):
$nf"
  touch "$MILVUS_HOME/.complete"
}

KAFKA_LIB=$CACHE/kafka-$KAFKA_VERSION/lib
ensure_kafka() {
  [[ -f "$KAFKA_LIB/.complete" ]] && return 0
  log "resolving Kafka $KAFKA_VERSION jars from Maven Central into $KAFKA_LIB"
  rm -rf "$KAFKA_LIB"; mkdir -p "$KAFKA_LIB"
  mvn -B -q -Dstyle.color=never -f "$REPO/testbed/kafka-pom.xml" -Dkafka.version="$KAFKA_VERSION" \
    -Dmaven.repo.local="$CACHE/m2" \
    org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$KAFKA_LIB"
  ls "$KAFKA_LIB"/kafka_2.13-"$KAFKA_VERSION".jar >/dev/null || die "kafka jars missing after mvn"
  touch "$KAFKA_LIB/.complete"
}

PULSAR_LIB=$CACHE/pulsar-$PULSAR_VERSION/lib
ensure_pulsar() {
  [[ -f "$PULSAR_LIB/.complete" ]] && return 0
  log "resolving Pulsar $PULSAR_VERSION jars from Maven Central into $PULSAR_LIB"
  rm -rf "$PULSAR_LIB"; mkdir -p "$PULSAR_LIB"
  mvn -B -q -Dstyle.color=never -f "$REPO/testbed/pulsar-pom.xml" -Dpulsar.version="$PULSAR_VERSION" \
    -Dmaven.repo.local="$CACHE/m2" \
    org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$PULSAR_LIB"
  ls "$PULSAR_LIB"/pulsar-broker-"$PULSAR_VERSION".jar >/dev/null || die "pulsar jars missing after mvn"
  touch "$PULSAR_LIB/.complete"
}

ensure_mq() { if [[ $MQ == pulsar ]]; then ensure_pulsar; else ensure_kafka; fi; }

# ---------------------------------------------------------------- etcd
etcd_healthy() { ETCDCTL_API=3 etcdctl --endpoints="127.0.0.1:$ETCD_PORT" --command-timeout=3s endpoint health; }
start_etcd() {
  if is_running etcd; then log "etcd: reusing pid $(pid_of etcd)"; wait_for "etcd health" 30 etcd etcd_healthy; return; fi
  check_ports_free etcd "$ETCD_PORT" "$ETCD_PEER_PORT"
  mkdir -p "$RUN/etcd"
  start_bg etcd etcd --name tb --data-dir "$RUN/etcd/data" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "tb=http://127.0.0.1:$ETCD_PEER_PORT" --initial-cluster-state new \
    --quota-backend-bytes 4294967296 --auto-compaction-mode revision --auto-compaction-retention 1000 \
    --snapshot-count 50000 --logger zap --log-level warn
  wait_for "etcd health" 30 etcd etcd_healthy
}

# ---------------------------------------------------------------- Kafka (KRaft, single combined node)
KAFKA_JAVA_OPTS=(-Xms256m -Xmx512m -XX:MaxDirectMemorySize=256m -XX:+UseSerialGC
  -XX:TieredStopAtLevel=1 -XX:-UsePerfData -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true
  "-Dlog4j.configuration=file:$REPO/testbed/log4j.properties" "-Dkafka.logs.dir=$RUN/kafka/logs")
kafka_healthy() { kcat -L -b "127.0.0.1:$KAFKA_PORT" -m 3 2>/dev/null | grep -q "broker 1 at"; }
start_kafka() {
  if is_running kafka; then log "kafka: reusing pid $(pid_of kafka)"; wait_for "kafka metadata" 120 kafka kafka_healthy; return; fi
  check_ports_free kafka "$KAFKA_PORT" "$KAFKA_CTRL_PORT"
  local d=$RUN/kafka
  mkdir -p "$d/data" "$d/logs"
  if [[ -f "$d/data/meta.properties" ]]; then
    # a restart (`start kafka`): same config, same data; the storage is formatted already
    log "kafka: restarting on the existing data in $d/data"
    start_bg kafka java "${KAFKA_JAVA_OPTS[@]}" -cp "$KAFKA_LIB/*" kafka.Kafka server.properties
    wait_for "kafka metadata" 120 kafka kafka_healthy
    return
  fi
  cat > "$d/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CTRL_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CTRL_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$d/data
num.partitions=1
default.replication.factor=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
message.max.bytes=10485760
num.network.threads=2
num.io.threads=2
background.threads=2
num.recovery.threads.per.data.dir=1
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=16777216
log.retention.hours=168
log.segment.bytes=67108864
EOF
  # a KRaft cluster id is 16 random bytes in unpadded base64url (22 chars); no JVM needed
  local id; id=$(head -c16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=' | cut -c1-22)
  (cd "$d" && java "${KAFKA_JAVA_OPTS[@]}" -cp "$KAFKA_LIB/*" kafka.tools.StorageTool \
      format --cluster-id="$id" --config=server.properties --ignore-formatted > format.log 2>&1) \
    || { cat "$d/format.log" >&2; die "kafka storage format failed"; }
  start_bg kafka java "${KAFKA_JAVA_OPTS[@]}" -cp "$KAFKA_LIB/*" kafka.Kafka server.properties
  wait_for "kafka metadata" 120 kafka kafka_healthy
}

# ---------------------------------------------------------------- Pulsar (standalone: broker + one bookie)
# What bin/pulsar adds to the JVM, with a small heap (docs/testbed.md, "Pulsar").
PULSAR_JAVA_OPTS=(-Xms256m -Xmx512m -XX:MaxDirectMemorySize=512m -XX:+UseSerialGC
  -XX:TieredStopAtLevel=1 -XX:-UsePerfData -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true
  -Dio.netty.tryReflectionSetAccessible=true
  --add-opens java.base/java.io=ALL-UNNAMED --add-opens java.base/java.util.zip=ALL-UNNAMED
  --add-opens java.base/java.nio=ALL-UNNAMED --add-opens java.base/jdk.internal.misc=ALL-UNNAMED
  --add-opens java.base/sun.net=ALL-UNNAMED --add-opens java.management/sun.management=ALL-UNNAMED
  --add-opens jdk.management/com.sun.management.internal=ALL-UNNAMED
  -Djava.net.preferIPv4Stack=true -Djute.maxbuffer=10485760
  -Dbookkeeper.metadata.bookie.drivers=org.apache.pulsar.metadata.bookkeeper.PulsarMetadataBookieDriver
  -Dbookkeeper.metadata.client.drivers=org.apache.pulsar.metadata.bookkeeper.PulsarMetadataClientDriver
  "-Dlog4j.configurationFile=$REPO/testbed/pulsar-log4j2.xml" "-Dpulsar.log.dir=$RUN/pulsar/logs")
# Ready = the admin REST health check (it round-trips a message through a heartbeat topic)
# answers 200, and the broker port accepts a TCP connection.
pulsar_healthy() {
  [[ "$(curl -s -o /dev/null -w '%{http_code}' -m 10 "http://127.0.0.1:$PULSAR_WEB_PORT/admin/v2/brokers/health")" == 200 ]] \
    && timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$PULSAR_PORT" 2>/dev/null
}
write_pulsar_config() { # one file: the broker's ServiceConfiguration and the bookie's ServerConfiguration
  cat > "$1" <<EOF
# Pulsar standalone for the milvus-cdc test bed (written by scripts/testbed.sh; docs/testbed.md).
# Keys left out take the Java defaults of ServiceConfiguration / BookKeeper's ServerConfiguration,
# not those of Pulsar's conf/standalone.conf.
clusterName=standalone
bindAddress=127.0.0.1
advertisedAddress=127.0.0.1
brokerServicePort=$PULSAR_PORT
webServicePort=$PULSAR_WEB_PORT
# one bookie: the Java default quorum of 2 fails with "not enough bookies"
managedLedgerDefaultEnsembleSize=1
managedLedgerDefaultWriteQuorum=1
managedLedgerDefaultAckQuorum=1
loadManagerClassName=org.apache.pulsar.broker.loadbalance.NoopLoadManager
loadBalancerEnabled=false
# Milvus topics have long idle stretches; never delete them
brokerDeleteInactiveTopicsEnabled=false
allowAutoTopicCreation=true
allowAutoTopicCreationType=non-partitioned
# like Milvus deployments: keep a week whatever the subscriptions acked, so a CDC can re-read
defaultRetentionTimeInMinutes=10080
defaultRetentionSizeInMB=-1
maxMessageSize=104857600
nettyMaxFrameSizeBytes=104867840
webSocketServiceEnabled=false
transactionCoordinatorEnabled=false
brokerShutdownTimeoutMs=10000
# small caches and pools for a 2-core host
managedLedgerCacheSizeMB=32
numIOThreads=2
numHttpServerThreads=8
numExecutorThreadPoolSize=2
numOrderedExecutorThreads=2
numCacheExecutorThreadPoolSize=1
topicOrderedExecutorThreadNum=2
managedLedgerNumSchedulerThreads=2
bookkeeperClientNumWorkerThreads=2
bookkeeperClientNumIoThreads=2
# --- the bookie: PulsarStandalone (RocksDB metadata mode) loads this same file as its
# ServerConfiguration. allowEphemeralPorts=true: without it Pulsar 4.0's BKCluster ignores
# --bookkeeper-port and takes a random free port (the bookie id in its cookie is host:port).
allowEphemeralPorts=true
listeningInterface=lo
allowLoopback=true
journalSyncData=false
diskUsageThreshold=0.99
diskUsageWarnThreshold=0.99
# read by DbLedgerStorage only; this bookie keeps BookKeeper's default SortedLedgerStorage
dbStorage_writeCacheMaxSizeMb=32
dbStorage_readAheadCacheMaxSizeMb=32
numAddWorkerThreads=1
numReadWorkerThreads=2
numJournalCallbackThreads=1
serverNumIOThreads=2
EOF
}
start_pulsar() {
  if is_running pulsar; then log "pulsar: reusing pid $(pid_of pulsar)"; wait_for "pulsar health" 180 pulsar pulsar_healthy; return; fi
  check_ports_free pulsar "$PULSAR_PORT" "$PULSAR_WEB_PORT" "$PULSAR_BK_PORT"
  local d=$RUN/pulsar
  mkdir -p "$d/data" "$d/logs"
  # a restart (`start pulsar`) keeps the config and the data: never --wipe-data
  if [[ -f "$d/standalone.conf" ]]; then
    log "pulsar: restarting on the existing data in $d/data"
  else
    write_pulsar_config "$d/standalone.conf"
  fi
  start_bg pulsar java "${PULSAR_JAVA_OPTS[@]}" -cp "$PULSAR_LIB/*" org.apache.pulsar.PulsarStandaloneStarter \
    --config standalone.conf --no-functions-worker --no-stream-storage \
    --metadata-dir "$d/data/metadata" --bookkeeper-dir "$d/data/bookkeeper" \
    --bookkeeper-port "$PULSAR_BK_PORT" --advertised-address 127.0.0.1
  wait_for "pulsar health" 180 pulsar pulsar_healthy
}

start_mq() { if [[ $MQ == pulsar ]]; then start_pulsar; else start_kafka; fi; }

# ---------------------------------------------------------------- Milvus
milvus_healthy() { [[ "$(curl -sf -m 3 "http://127.0.0.1:$(metrics_port "$1")/healthz")" == OK ]]; }
start_milvus() {
  local name=$1 comp=milvus-$1
  if is_running "$comp"; then
    log "$comp: reusing pid $(pid_of "$comp")"
    wait_for "$comp /healthz" "$HEALTH_TIMEOUT" "$comp" milvus_healthy "$name"; return
  fi
  # shellcheck disable=SC2046
  check_ports_free "$comp" $(milvus_ports "$name")
  local d=$RUN/$comp
  mkdir -p "$d"
  # a restart (`start source`) keeps the rendered config; the data (etcd root, local storage) stays
  [[ -f "$d/conf/milvus.yaml" ]] && log "$comp: restarting on its existing config and data" || \
  "$PY" "$REPO/testbed/milvus_config.py" --template "$MILVUS_HOME/tmpl/config.yaml.template" \
    --instance-dir "$d" --etcd "127.0.0.1:$ETCD_PORT" --mq "$MQ" --kafka "127.0.0.1:$KAFKA_PORT" \
    --pulsar "127.0.0.1:$PULSAR_PORT" --pulsar-web-port "$PULSAR_WEB_PORT" \
    --port-shift $((M_SHIFT[$name] + OFF)) --root "${M_ROOT[$name]}" --prefix "${M_ROOT[$name]}" \
    --tt-msg-enabled "${M_TT[$name]}" --dml-channels "$DML_CHANNELS" \
    --time-tick-ms "$TIME_TICK_MS"
  # env -i: Milvus 2.3 reads every environment variable as a config key.
  # -alias: names the flock-ed pid file in Milvus's runtime dir; must differ per instance.
  start_bg "$comp" env -i PATH=/usr/bin:/bin HOME="$d" MILVUSCONF="$d/conf/" \
    METRICS_PORT="$(metrics_port "$name")" DEPLOY_MODE=STANDALONE LD_LIBRARY_PATH="$MILVUS_HOME/bin" \
    GOMAXPROCS=2 GOGC=200 \
    "$MILVUS_HOME/bin/milvus" run standalone -alias "tb-$name-$OFF"
  wait_for "$comp /healthz" "$HEALTH_TIMEOUT" "$comp" milvus_healthy "$name"
}

# ---------------------------------------------------------------- milvus-lite (optional target)
# Health: the gRPC CheckHealth answer (testbed/grpc_health.py), not just an open port.
lite_healthy() { "$LITE_PY" "$REPO/testbed/grpc_health.py" "127.0.0.1:$LITE_PORT"; }
start_lite() {
  if is_running milvus-lite; then
    log "milvus-lite: reusing pid $(pid_of milvus-lite)"; wait_for "milvus-lite CheckHealth" 60 milvus-lite lite_healthy; return
  fi
  check_ports_free milvus-lite "$LITE_PORT"
  mkdir -p "$RUN/milvus-lite"
  # --host: the default is 0.0.0.0. SIGTERM ends it at once (Python's default); its WAL keeps the data.
  start_bg milvus-lite env -i PATH=/usr/bin:/bin HOME="$RUN/milvus-lite" PYTHONUNBUFFERED=1 \
    "$(lite_venv_dir)/bin/milvus-lite" server --data-dir "$RUN/milvus-lite/data" \
    --host 127.0.0.1 --port "$LITE_PORT"
  wait_for "milvus-lite CheckHealth" 60 milvus-lite lite_healthy
}

# ---------------------------------------------------------------- CDC config
mq_source_config() { # the sourceConfig block of the bed's message queue (official cdc.yaml shape)
  if [[ $MQ == pulsar ]]; then
    cat <<EOF
  pulsar:
    address: pulsar://127.0.0.1:$PULSAR_PORT
    webAddress: 127.0.0.1:$PULSAR_WEB_PORT
    maxMessageSize: 5242880
    tenant: public
    namespace: default
EOF
  else
    cat <<EOF
  kafka:
    address: 127.0.0.1:$KAFKA_PORT
EOF
  fi
}
write_cdc_config() {
  mkdir -p "$RUN/cdc"
  cat > "$RUN/cdc/cdc.yaml" <<EOF
# milvus-cdc server config for the local test bed (written by scripts/testbed.sh up)
address: 127.0.0.1:$CDC_PORT
maxTaskNum: 100
maxNameLength: 256
logLevel: info
metaStoreConfig:
  storeType: sqlite
  sqlitePath: $RUN/cdc/meta.db
  rootPath: cdc
sourceConfig:
  etcd:
    address: [127.0.0.1:$ETCD_PORT]
    rootPath: ${M_ROOT[source]}
    metaSubPath: meta
$(mq_source_config)
  milvus:
    uri: http://127.0.0.1:$(proxy_port source)
  replicateChan: ${M_ROOT[source]}-replicate-msg
  channelNum: $DML_CHANNELS
EOF
}

# ---------------------------------------------------------------- commands
any_running() {
  local c
  for c in etcd kafka pulsar milvus-source milvus-target milvus-replica milvus-lite; do is_running "$c" && return 0; done
  return 1
}

cmd_up() {
  local replica=0 lite=0 want=${TESTBED_MQ:-} cur
  [[ ${TESTBED_LITE:-} == 1 ]] && lite=1
  while (($#)); do
    case $1 in
      --replica) replica=1 ;;
      --lite) lite=1 ;;
      --mq) (($# >= 2)) || die "up: --mq needs kafka or pulsar"; want=$2; shift ;;
      --mq=*) want=${1#--mq=} ;;
      *) die "up: unknown option $1" ;;
    esac
    shift
  done
  # no --mq (nor TESTBED_MQ): a running bed keeps its queue, a new one gets Kafka
  if [[ -z $want ]]; then
    want=kafka; any_running && [[ -f "$RUN/mq" ]] && want=$(cat "$RUN/mq")
  fi
  [[ $want == kafka || $want == pulsar ]] || die "up: --mq $want: kafka or pulsar"
  if any_running; then
    cur=kafka; [[ -f "$RUN/mq" ]] && cur=$(cat "$RUN/mq")
    [[ $cur == "$want" ]] || die "the bed in $RUN is running with mq=$cur, but \`up\` was asked for mq=$want (--mq or TESTBED_MQ). Run \`scripts/testbed.sh down\` first, or ask for --mq $cur."
  fi
  MQ=$want
  local t0; t0=$(now)
  ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  ensure_tools
  mkdir -p "$CACHE"
  ensure_venv; ensure_mq; ensure_milvus
  if ((lite)); then ensure_lite_venv; fi
  log "installs ready after $(( $(now) - t0 ))s"
  if ! any_running; then
    # fresh bed: stale data from a crashed run would confuse Milvus (leases, positions)
    if [[ -d "$RUN" && -n "$(ls -A "$RUN" 2>/dev/null)" && ! -f "$RUN/$MARKER" ]]; then
      die "$RUN exists, is not empty and is not a test bed run dir; set TESTBED_RUN_DIR elsewhere"
    fi
    rm -rf "$RUN"
  fi
  mkdir -p "$RUN"; touch "$RUN/$MARKER"; echo "$MQ" > "$RUN/mq"
  # fail fast, before starting anything, if a port of a component still to start is taken
  local lo; lo=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
  is_running etcd || check_ports_free etcd "$ETCD_PORT" "$ETCD_PEER_PORT"
  if [[ $MQ == pulsar ]]; then
    is_running pulsar || check_ports_free pulsar "$PULSAR_PORT" "$PULSAR_WEB_PORT" "$PULSAR_BK_PORT"
  else
    is_running kafka || check_ports_free kafka "$KAFKA_PORT" "$KAFKA_CTRL_PORT"
  fi
  for n in source target $( ((replica)) && echo replica); do
    # shellcheck disable=SC2046
    is_running "milvus-$n" || check_ports_free "milvus-$n" $(milvus_ports "$n")
  done
  if ((lite)); then is_running milvus-lite || check_ports_free milvus-lite "$LITE_PORT"; fi
  if (( ETCD_PEER_PORT >= lo )); then
    log "WARNING: with TESTBED_PORT_OFFSET=$OFF some ports are in the ephemeral range (>= $lo); starts may collide"
  fi
  start_etcd
  start_mq
  start_milvus source
  start_milvus target
  if ((replica)); then start_milvus replica; fi
  if ((lite)); then start_lite; fi
  write_cdc_config
  log "bed up in $(( $(now) - t0 ))s (run dir $RUN)"
  cmd_env
}

cmd_down() {
  local n
  # Milvus 2.3.5 standalone hangs in its graceful stop (proxy retries the stopped rootcoord
  # forever, gracefulStopTimeout is not applied), so it gets a short grace, then SIGKILL.
  stop_components "${TESTBED_MILVUS_STOP_TIMEOUT:-15}" milvus-lite milvus-replica milvus-target milvus-source
  stop_components 30 kafka pulsar
  stop_components 30 etcd
  # Milvus's own flock-ed pid files (fixed runtime dir, one per -alias of this bed)
  for n in "${MILVUS_INSTANCES[@]}"; do
    rm -f "/run/milvus/standalone-tb-$n-$OFF.pid" "/tmp/milvus/standalone-tb-$n-$OFF.pid"
  done
  if [[ -f "$RUN/$MARKER" ]]; then
    rm -rf "$RUN"; log "removed $RUN"
  elif [[ -e "$RUN" ]]; then
    log "left $RUN in place: it has no $MARKER marker"
  fi
}

cmd_status() {
  local c pid state rc=0 ok started=0 rss
  printf '%-15s %-8s %-9s %-9s %s\n' COMPONENT PID STATE RSS_MB PORTS
  for c in etcd "$MQ" milvus-source milvus-target milvus-replica milvus-lite; do
    pid=$(pid_of "$c"); state=stopped; rss=-
    if is_running "$c"; then
      started=$((started + 1))
      if frozen "$pid"; then ok=0; else case $c in
        etcd) etcd_healthy >/dev/null 2>&1 && ok=1 || ok=0 ;;
        kafka) kafka_healthy && ok=1 || ok=0 ;;
        pulsar) pulsar_healthy && ok=1 || ok=0 ;;
        milvus-lite) lite_healthy >/dev/null 2>&1 && ok=1 || ok=0 ;;
        milvus-*) milvus_healthy "${c#milvus-}" && ok=1 || ok=0 ;;
      esac; fi
      if ((ok)); then state=healthy; else state=unhealthy; rc=1; fi
      if frozen "$pid"; then state=frozen; fi
      rss=$(awk '/VmRSS/ {printf "%d", $2/1024}' "/proc/$pid/status" 2>/dev/null || echo -)
    elif [[ -n "$pid" ]]; then
      state=dead; rc=1
    elif [[ $c != milvus-replica && $c != milvus-lite ]]; then
      rc=1
    fi
    ports=$(comp_ports "$c")
    printf '%-15s %-8s %-9s %-9s %s\n' "$c" "${pid:--}" "$state" "$rss" "$ports"
  done
  ((started > 0)) || echo "(bed is down; run dir $RUN)"
  return $rc
}

cmd_env() {
  cat <<EOF
TESTBED_RUN_DIR=$RUN
ETCD_ENDPOINTS=127.0.0.1:$ETCD_PORT
SOURCE_MQ=$MQ
EOF
  if [[ $MQ == pulsar ]]; then
    echo "PULSAR_URL=pulsar://127.0.0.1:$PULSAR_PORT"
    echo "PULSAR_WEB_URL=http://127.0.0.1:$PULSAR_WEB_PORT"
  else
    echo "KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT"
  fi
  cat <<EOF
SOURCE_MILVUS_URI=http://127.0.0.1:$(proxy_port source)
TARGET_MILVUS_URI=http://127.0.0.1:$(proxy_port target)
EOF
  if is_running milvus-replica; then echo "REPLICA_MILVUS_URI=http://127.0.0.1:$(proxy_port replica)"; fi
  if is_running milvus-lite; then echo "LITE_MILVUS_URI=http://127.0.0.1:$LITE_PORT"; fi
  cat <<EOF
SOURCE_ETCD_ROOT=${M_ROOT[source]}
SOURCE_META_SUBPATH=meta
SOURCE_CHANNEL_PREFIX=${M_ROOT[source]}
SOURCE_REPLICATE_CHANNEL=${M_ROOT[source]}-replicate-msg
SOURCE_DML_CHANNEL_NUM=$DML_CHANNELS
TARGET_ETCD_ROOT=${M_ROOT[target]}
TARGET_CHANNEL_PREFIX=${M_ROOT[target]}
EOF
  if is_running milvus-replica; then
    echo "REPLICA_ETCD_ROOT=${M_ROOT[replica]}"
    echo "REPLICA_CHANNEL_PREFIX=${M_ROOT[replica]}"
  fi
  cat <<EOF
PYTHON=$PY
CDC_CONFIG=$RUN/cdc/cdc.yaml
CDC_ADDRESS=127.0.0.1:$CDC_PORT
EOF
}

# ---------------------------------------------------------------- one component (fault tests)
comp_dir() { # COMPONENT argument -> its dir under the run dir
  case ${1:-} in
    etcd) echo "$1" ;;
    kafka|pulsar)
      [[ $1 == "$MQ" ]] || die "this bed runs $MQ, not $1 (the mq is chosen by \`up --mq\`)"
      echo "$1" ;;
    source|target|replica|lite) echo "milvus-$1" ;;
    milvus-source|milvus-target|milvus-replica|milvus-lite) echo "$1" ;;
    *) die "unknown component '${1:-}' (etcd, kafka or pulsar, source, target, replica, lite)" ;;
  esac
}

comp_ports() { # every port a component listens on
  case $1 in
    etcd) echo "$ETCD_PORT $ETCD_PEER_PORT" ;;
    kafka) echo "$KAFKA_PORT $KAFKA_CTRL_PORT" ;;
    pulsar) echo "$PULSAR_PORT $PULSAR_WEB_PORT $PULSAR_BK_PORT" ;;
    milvus-lite) echo "$LITE_PORT" ;;
    milvus-*) milvus_ports "${1#milvus-}" ;;
  esac
}

frozen() { [[ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" == T ]]; }

need_bed() {
  [[ -f "$RUN/$MARKER" ]] || die "no test bed in $RUN (run \`scripts/testbed.sh up\` first)"
}

# stop COMPONENT [--kill]
cmd_stop() {
  local c kill=0 a pid t0
  c=$(comp_dir "${1:-}"); shift || true
  for a in "$@"; do case $a in --kill) kill=1 ;; *) die "stop: unknown option $a" ;; esac; done
  need_bed
  if ! is_running "$c"; then log "$c is not running"; rm -f "$RUN/$c/pid"; return 0; fi
  pid=$(pid_of "$c"); t0=$(now)
  if ((kill)); then
    log "killing $c (pid $pid, SIGKILL)"
    kill -KILL "$pid" 2>/dev/null || true
    while alive "$pid" && (( $(now) - t0 < 20 )); do sleep 0.2; done
    alive "$pid" && die "pid $pid survived SIGKILL"
    rm -f "$RUN/$c/pid"
  else
    case $c in
      milvus-*) stop_components "${TESTBED_MILVUS_STOP_TIMEOUT:-15}" "$c" ;;
      *) stop_components 30 "$c" ;;
    esac
  fi
  # A killed process's sockets can outlive its pid for a moment (its threads still exiting);
  # `start` checks the ports, so wait for them here.
  local p left
  for p in $(comp_ports "$c"); do
    while port_busy "$p" && (( $(now) - t0 < 60 )); do sleep 0.2; done
    port_busy "$p" && left+=" $p"
  done
  [[ -z "${left:-}" ]] || log "WARNING: ports still in use after stopping $c:$left"
  # the flock on Milvus's own pid file went with the process; remove the file like `down` does
  if [[ $c == milvus-* && $c != milvus-lite ]]; then
    rm -f "/run/milvus/standalone-tb-${c#milvus-}-$OFF.pid" "/tmp/milvus/standalone-tb-${c#milvus-}-$OFF.pid"
  fi
  log "$c stopped after $(( $(now) - t0 ))s"
}

# start COMPONENT: on its existing data and config; waits until healthy
cmd_start() {
  local c t0; c=$(comp_dir "${1:-}")
  need_bed
  if is_running "$c" && frozen "$(pid_of "$c")"; then
    die "$c (pid $(pid_of "$c")) is frozen: \`scripts/testbed.sh thaw ${c#milvus-}\` first"
  fi
  t0=$(now)
  ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  ensure_tools
  case $c in
    etcd) start_etcd ;;
    kafka) start_kafka ;;
    pulsar) start_pulsar ;;
    milvus-lite)
      [[ -d "$RUN/$c" ]] || die "$c was never started in this bed (use \`up --lite\`)"
      start_lite ;;
    milvus-*)
      [[ -d "$RUN/$c" ]] || die "$c was never started in this bed (use \`up --replica\` for REPLICA)"
      start_milvus "${c#milvus-}" ;;
  esac
  log "$c started after $(( $(now) - t0 ))s"
}

cmd_restart() {
  local comp=${1:-}; shift || true
  cmd_stop "$comp" "$@"
  cmd_start "$comp"
}

# freeze / thaw COMPONENT: SIGSTOP / SIGCONT of its process
cmd_signal() {
  local sig=$1 c pid; c=$(comp_dir "${2:-}")
  need_bed
  is_running "$c" || die "$c is not running"
  pid=$(pid_of "$c")
  kill "-$sig" "$pid"
  log "$c (pid $pid): SIG$sig"
}

case ${1:-} in
  stop) shift; cmd_stop "$@" ;;
  start) shift; cmd_start "$@" ;;
  restart) shift; cmd_restart "$@" ;;
  freeze) cmd_signal STOP "${2:-}" ;;
  thaw) cmd_signal CONT "${2:-}" ;;
  up) shift; cmd_up "$@" ;;
  down) cmd_down ;;
  status) cmd_status ;;
  env) cmd_env ;;
  *) sed -n '2,36p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
