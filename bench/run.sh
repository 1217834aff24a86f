#!/usr/bin/env bash
# Replication benchmark of milvus-cdc on the local test bed (docs/performance.md).
#
#   bench/run.sh [options of bench/bench.py]     full run: 4 phases x (10 s warm-up + 120 s)
#   bench/run.sh --window 30 --warmup 5          a shorter trial run
#   bench/run.sh --help                          every option
#   bench/run.sh --mq pulsar [options]           on a Pulsar bed (SOURCE's log in Pulsar)
#   bench/run.sh --mq both [options]             the Kafka bed, then the Pulsar bed, same options;
#                                                mq-compare.json holds the drain rates side by side
#   bench/run.sh --replica --target replica --phases live,drain,half
#                                                into the bed's REPLICA (a standby: write_mode replicate)
#
# Brings the bed up with scripts/testbed.sh (reusing a running one; the default bed unless
# TESTBED_RUN_DIR / TESTBED_PORT_OFFSET say otherwise) and takes it down at the end if it
# started it (unless TESTBED_KEEP=1). Writes bench/results/<time>/{result.json,chart.png,cdc/}
# and points bench/results/latest at it.
#
# Env: CDC_BINARY     the milvus-cdc to measure (default build/milvus-cdc, from `make build`)
#      TESTBED_TIME_TICK_MS  Milvus time tick of a bed this run starts (default 200, Milvus's own;
#                       a running bed keeps its tick, which result.json records)
#      MILVUS_CDC_CACHE  cache of the plotting venv (default $HOME/.cache/milvus-cdc)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
CACHE=${MILVUS_CDC_CACHE:-$HOME/.cache/milvus-cdc}
export CDC_BINARY=${CDC_BINARY:-$REPO/build/milvus-cdc}
export TESTBED_TIME_TICK_MS=${TESTBED_TIME_TICK_MS:-200}
log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

MQ=kafka
UP_FLAGS=()
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help)
      eval "$(bash scripts/testbed.sh env 2>/dev/null | grep '^PYTHON=')" || true
      exec "${PYTHON:-python3}" bench/bench.py --help ;;
    --mq) MQ=${2:?--mq needs kafka, pulsar or both}; shift 2 ;;
    --mq=*) MQ=${1#--mq=}; shift ;;
    --replica) UP_FLAGS+=(--replica); shift ;;
    *) args+=("$1"); shift ;;
  esac
done
case "$MQ" in kafka|pulsar|both) ;; *) echo "bench: --mq must be kafka, pulsar or both, got '$MQ'" >&2; exit 2 ;; esac
if [ ! -x "$CDC_BINARY" ]; then
  echo "bench: $CDC_BINARY not found: run 'make build' or set CDC_BINARY" >&2
  exit 1
fi

# The plotting venv: matplotlib only, keyed by bench/requirements.txt and the Python version.
key=$( { cat bench/requirements.txt; python3 -c 'import sys; print(sys.version)'; } | sha256sum | cut -c1-12)
PLOT_VENV=$CACHE/bench-venv-$key
if [ ! -f "$PLOT_VENV/.complete" ]; then
  log "creating the plotting venv $PLOT_VENV"
  rm -rf "$PLOT_VENV"
  if python3 -m venv "$PLOT_VENV" && "$PLOT_VENV/bin/python" -m pip install -q -r bench/requirements.txt; then
    touch "$PLOT_VENV/.complete"
  else
    log "warning: could not build the plotting venv; the run goes on without a chart"
  fi
fi

bed_was_up=0
if bash scripts/testbed.sh status >/dev/null 2>&1; then bed_was_up=1; fi
cleanup() {
  rc=$?
  if [ "$bed_was_up" = 0 ] && [ -z "${TESTBED_KEEP:-}" ]; then
    log "test bed down (it was started by this run; TESTBED_KEEP=1 keeps it)"
    bash scripts/testbed.sh down >/dev/null || true
  fi
  exit $rc
}
trap cleanup EXIT

# One benchmark on a bed whose SOURCE logs to $1; results in $2.
run_on() {
  local mq=$1 dir=$2
  local running
  running=$(bash scripts/testbed.sh env 2>/dev/null | sed -n 's/^SOURCE_MQ=//p' || true)
  if [ -n "$running" ] && [ "$running" != "$mq" ]; then
    log "the running bed uses $running: taking it down for a $mq bed"
    bash scripts/testbed.sh down >/dev/null
  fi
  bash scripts/testbed.sh up --mq "$mq" "${UP_FLAGS[@]}" >/dev/null  # its progress goes to stderr
  eval "$(bash scripts/testbed.sh env | sed 's/^/export /')"
  mkdir -p "$dir"
  log "$mq bed; load before the run: $(cut -d' ' -f1-3 /proc/loadavg); results in $dir"
  "$PYTHON" bench/bench.py --out "$dir" "${args[@]}"
  if [ -f "$PLOT_VENV/.complete" ]; then
    "$PLOT_VENV/bin/python" bench/plot.py "$dir/result.json" "$dir/chart.png"
    log "chart: $dir/chart.png"
  fi
}

stamp=$(date +%Y%m%d-%H%M%S)
out=bench/results/$stamp
if [ "$MQ" = both ]; then
  run_on kafka "$out/kafka"
  run_on pulsar "$out/pulsar"
  "$PYTHON" - "$out" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
res = {mq: json.loads((out / mq / "result.json").read_text()) for mq in ("kafka", "pulsar")}
rate = {mq: r.get("summary", {}).get("drain", {}).get("replicated_rows_per_s") for mq, r in res.items()}
cmp = {"drain_rows_per_s": rate,
       "pulsar_over_kafka": (rate["pulsar"] / rate["kafka"]) if rate["kafka"] and rate["pulsar"] else None}
(out / "mq-compare.json").write_text(json.dumps(cmp, indent=2) + "\n")
print(json.dumps(cmp, indent=2))
PY
else
  run_on "$MQ" "$out"
fi
ln -sfn "$stamp" bench/results/latest
