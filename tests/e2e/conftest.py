"""pytest fixtures for the end-to-end tests on the local test bed.

- `bed_env` (session): brings the bed up once per pytest run with `scripts/testbed.sh up`,
  or reuses a running one, and returns the `scripts/testbed.sh env` values as a dict
  (plus BED_STARTED_BY_PYTEST = "1" or "0").
- `source`, `target` (session): pymilvus connection aliases; pass them as `using=`.

Teardown: the fixtures never stop the bed. A bed that pytest started stays up at the end
of the run and the caller stops it: the test script `scripts/test-all.sh` (`make test`,
.ci/run) runs `scripts/testbed.sh down` at the end unless TESTBED_KEEP=1 or the bed was
already up before it started. When you run pytest by hand, run `scripts/testbed.sh down`
yourself when done.

Set TESTBED_REPLICA=1 to also start the REPLICA Milvus (ttMsgEnabled=false), TESTBED_LITE=1
to also start the milvus-lite server (`lite` fixture; tests/e2e/test_migration.py).

CDC_E2E_TARGET=replica runs the suites against REPLICA, the bed's standby Milvus
(common.ttMsgEnabled=false), instead of TARGET: the bed is brought up with REPLICA, `bed_env`'s
TARGET_* entries are REPLICA's (TARGET_MILVUS_URI, TARGET_ETCD_ROOT, TARGET_CHANNEL_PREFIX),
TARGET_COMPONENT is "replica" (helpers.target_component: what the fault tests restart), and the
`target` alias connects to REPLICA. BED_TARGET_MILVUS_URI is always the bed's writable TARGET.
Tests marked `writable_target` (they write to TARGET with plain inserts or deletes, which a
standby refuses) are skipped under the switch.
"""
import os

import pytest

from helpers import E2E_TARGET, E2E_TARGETS, STANDBY, parse_env, run_testbed

# REPLICA_<key> replaces TARGET_<key> under CDC_E2E_TARGET=replica (scripts/testbed.sh env)
STANDBY_KEYS = ("MILVUS_URI", "ETCD_ROOT", "CHANNEL_PREFIX")


def pytest_configure(config):
    # also registered in pytest.ini; kept here so the mark exists with any ini file
    config.addinivalue_line("markers", "bed: needs the local test bed (etcd, Kafka, Milvus)")
    config.addinivalue_line("markers", "faults: restarts, freezes or kills parts of the bed (run apart: -m faults)")
    config.addinivalue_line("markers", "standby: needs REPLICA, the bed's standby Milvus (run apart: -m standby)")
    config.addinivalue_line("markers", "writable_target(why): writes to TARGET directly; "
                                       "skipped with CDC_E2E_TARGET=replica")
    if E2E_TARGET not in E2E_TARGETS:
        raise pytest.UsageError("CDC_E2E_TARGET=%r: expected one of %s" % (E2E_TARGET, ", ".join(E2E_TARGETS)))


def pytest_collection_modifyitems(config, items):
    if not STANDBY:
        return
    for item in items:
        mark = item.get_closest_marker("writable_target")
        if mark is not None:
            why = mark.args[0] if mark.args else "it writes to TARGET directly"
            item.add_marker(pytest.mark.skip(
                reason="needs a writable TARGET (%s); REPLICA runs with common.ttMsgEnabled=false and "
                       "refuses plain writes (CDC_E2E_TARGET=replica)" % why))


def pytest_report_header(config):
    if STANDBY:
        return "CDC_E2E_TARGET=replica: the tests' TARGET is the bed's REPLICA (common.ttMsgEnabled=false)"
    return None


@pytest.fixture(scope="session")
def bed_env():
    status = run_testbed("status", check=False, timeout=120)
    up_args = ["up"] + (["--replica"] if os.environ.get("TESTBED_REPLICA") == "1" or STANDBY else []) \
        + (["--lite"] if os.environ.get("TESTBED_LITE") == "1" else [])
    started = status.returncode != 0
    try:
        run_testbed(*up_args, timeout=3600)
    except RuntimeError as e:
        pytest.fail(str(e), pytrace=False)
    env = parse_env(run_testbed("env").stdout)
    env["BED_STARTED_BY_PYTEST"] = "1" if started else "0"
    env["BED_TARGET_MILVUS_URI"] = env["TARGET_MILVUS_URI"]
    env["TARGET_COMPONENT"] = "target"
    env["CDC_E2E_TARGET"] = E2E_TARGET
    if STANDBY:
        missing = ["REPLICA_" + k for k in STANDBY_KEYS if "REPLICA_" + k not in env]
        if missing:
            pytest.fail("CDC_E2E_TARGET=replica but `scripts/testbed.sh env` has no %s (is REPLICA up?)"
                        % ", ".join(missing), pytrace=False)
        for k in STANDBY_KEYS:
            env["TARGET_" + k] = env["REPLICA_" + k]
        env["TARGET_COMPONENT"] = "replica"
    yield env
    if started and not os.environ.get("TESTBED_KEEP"):
        # left to the caller (scripts/test-all.sh runs `down`); say so for manual runs
        print("\n[bed] this run started the test bed; stop it with: scripts/testbed.sh down")


def _connect(alias, uri):
    from pymilvus import connections
    connections.connect(alias=alias, uri=uri, timeout=60)
    return alias


@pytest.fixture(scope="session")
def source(bed_env):
    from pymilvus import connections
    yield _connect("source", bed_env["SOURCE_MILVUS_URI"])
    connections.disconnect("source")


@pytest.fixture(scope="session")
def target(bed_env):
    from pymilvus import connections
    yield _connect("target", bed_env["TARGET_MILVUS_URI"])
    connections.disconnect("target")


@pytest.fixture(scope="session")
def replica(bed_env):
    if "REPLICA_MILVUS_URI" not in bed_env:
        pytest.skip("REPLICA not running (set TESTBED_REPLICA=1 or run `scripts/testbed.sh up --replica`)")
    from pymilvus import connections
    yield _connect("replica", bed_env["REPLICA_MILVUS_URI"])
    connections.disconnect("replica")


@pytest.fixture(scope="session")
def lite(bed_env):
    if "LITE_MILVUS_URI" not in bed_env:
        pytest.skip("milvus-lite not running (set TESTBED_LITE=1 or run `scripts/testbed.sh up --lite`)")
    from pymilvus import connections
    yield _connect("lite", bed_env["LITE_MILVUS_URI"])
    connections.disconnect("lite")
