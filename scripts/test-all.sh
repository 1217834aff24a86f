#!/usr/bin/env bash
# Runs every test: unit tests (ctest) and end-to-end tests (pytest) against the real
# local test bed (etcd, Kafka, two Milvus 2.3.5), which it brings up and tears down.
# The fault-injection tests (pytest mark `faults`) run in a pytest run of their own.
# Then the standby stage: test_standby.py, replication, workload, pause/resume, kill -9, broker and
# REPLICA restarts with REPLICA (common.ttMsgEnabled=false) as the target (CDC_E2E_TARGET=replica,
# STANDBY_TESTS below). Then the bed is rebuilt on Pulsar (SOURCE and TARGET with mq.type pulsar) and the Pulsar
# reader's tests, replication, workload, progress, kill -9, broker restart and broker outage run
# again on it (PULSAR_TESTS below).
# Env: TESTBED_KEEP=1 leaves the bed running afterwards; PYTEST_ARGS adds pytest flags;
# CDC_SKIP_FAULTS=1 skips the fault tests; CDC_SKIP_STANDBY=1 the standby stage (CDC_STANDBY_STREAM_S,
# default 60, is its kill -9 stream in seconds); CDC_SKIP_PULSAR=1 the Pulsar stage.
set -euo pipefail
cd "$(dirname "$0")/.."

started=$(date +%s)
stamp() { echo "== [$(( $(date +%s) - started ))s] $*"; }

stamp "build"
bash scripts/build.sh

stamp "test bed up"
bed_was_up=0
if bash scripts/testbed.sh status >/dev/null 2>&1; then bed_was_up=1; fi
cleanup() {
  rc=$?
  if [ "$bed_was_up" = 0 ] && [ -z "${TESTBED_KEEP:-}" ]; then
    stamp "test bed down"
    bash scripts/testbed.sh down || true
  fi
  exit $rc
}
trap cleanup EXIT
# REPLICA (ttMsgEnabled=false) for the standby stage and the refusal test; milvus-lite for the migration test
bash scripts/testbed.sh up --replica --lite
eval "$(bash scripts/testbed.sh env | sed 's/^/export /')"

stamp "unit tests"  # after the bed: the Kafka reader's tests use its broker (KAFKA_BROKERS)
ctest --test-dir build --output-on-failure -j2

# pytest exit status, with "collected no tests" (5) counted as a failure
run_pytest() {
  set +e
  "$PYTHON" -m pytest -v "$@" ${PYTEST_ARGS:-}
  local r=$?
  set -e
  if [ "$r" = 5 ]; then echo "pytest collected no tests: that is a failure here"; r=1; fi
  return $r
}

stamp "end-to-end tests"
# test_standby.py (mark `standby`) runs in the standby stage below
rc=0; run_pytest tests/e2e -m "not faults and not standby" || rc=$?

# Restarts, freezes and kills of bed components (tests/e2e/test_faults.py), in a pytest run of
# their own after every other test, so they cannot disturb them. CDC_SKIP_FAULTS=1 skips them.
rc_faults=0
if [ -z "${CDC_SKIP_FAULTS:-}" ]; then
  stamp "fault-injection tests"
  run_pytest tests/e2e -m faults || rc_faults=$?
fi

# Standby targets: the task writes to REPLICA (common.ttMsgEnabled=false) in `replicate` mode, on
# the same Kafka bed. CDC_E2E_TARGET=replica makes the suites' TARGET REPLICA (tests/e2e/conftest.py)
# and the fault tests restart REPLICA where they restart TARGET. CDC_SKIP_STANDBY=1 skips it.
STANDBY_TESTS=(
  tests/e2e/test_standby.py
  tests/e2e/test_replication.py
  tests/e2e/test_workload.py
  tests/e2e/test_faults.py::test_pause_stops_writes_and_resume_catches_up
  tests/e2e/test_faults.py::test_kill9_loop_loses_and_doubles_nothing
  tests/e2e/test_faults.py::test_mq_broker_restart
  tests/e2e/test_faults.py::test_target_milvus_restart
)
rc_standby=0
if [ -z "${CDC_SKIP_STANDBY:-}" ]; then
  stamp "standby tests (REPLICA as the target)"
  ( export CDC_E2E_TARGET=replica CDC_FAULT_STREAM_S="${CDC_STANDBY_STREAM_S:-60}"
    run_pytest "${STANDBY_TESTS[@]}" ) || rc_standby=$?
fi

# The same pipeline on a Pulsar-backed SOURCE: a bed of its own (the Kafka one goes down first).
PULSAR_TESTS=(
  tests/e2e/test_bed_pulsar.py
  tests/e2e/test_pulsar.py
  tests/e2e/test_replication.py
  tests/e2e/test_workload.py
  tests/e2e/test_progress.py
  tests/e2e/test_capture.py
  tests/e2e/test_faults.py::test_kill9_loop_loses_and_doubles_nothing
  tests/e2e/test_faults.py::test_mq_broker_restart
  tests/e2e/test_faults.py::test_mq_down_beyond_retry_budget_pauses_naming_it
)
rc_pulsar=0
if [ -z "${CDC_SKIP_PULSAR:-}" ]; then
  stamp "Pulsar test bed up"
  bash scripts/testbed.sh down
  bash scripts/testbed.sh up --mq pulsar
  eval "$(bash scripts/testbed.sh env | sed 's/^/export /')"
  stamp "Pulsar end-to-end tests"
  run_pytest "${PULSAR_TESTS[@]}" || rc_pulsar=$?
  # after the e2e tests: the reader's real-broker tests read a DML channel Milvus has written
  stamp "Pulsar reader tests on the real broker"
  PULSAR_CHANNEL="${SOURCE_ETCD_ROOT}-rootcoord-dml_0" ctest --test-dir build --output-on-failure -R 'PulsarRealBroker' \
    || rc_pulsar=$?
fi
stamp "done (pytest exit $rc, fault tests exit $rc_faults, standby stage exit $rc_standby, Pulsar stage exit $rc_pulsar)"
[ "$rc" = 0 ] && [ "$rc_faults" = 0 ] && [ "$rc_standby" = 0 ] && [ "$rc_pulsar" = 0 ]
