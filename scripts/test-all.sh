#!/usr/bin/env bash
# Runs every test: unit tests (ctest) and end-to-end tests (pytest) against the real
# local test bed (etcd, Kafka, two Milvus 2.3.5), which it brings up and tears down.
# Env: TESTBED_KEEP=1 leaves the bed running afterwards; PYTEST_ARGS adds pytest flags.
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
bash scripts/testbed.sh up --replica  # REPLICA (ttMsgEnabled=false) for the refusal test
eval "$(bash scripts/testbed.sh env | sed 's/^/export /')"

stamp "unit tests"  # after the bed: the Kafka reader's tests use its broker (KAFKA_BROKERS)
ctest --test-dir build --output-on-failure -j2

stamp "end-to-end tests"
set +e
"$PYTHON" -m pytest tests/e2e -v ${PYTEST_ARGS:-}
rc=$?
set -e
if [ "$rc" = 5 ]; then
  echo "pytest collected no tests: that is a failure here"
  rc=1
fi
stamp "done (pytest exit $rc)"
exit $rc
