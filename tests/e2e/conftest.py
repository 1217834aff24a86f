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
"""
import os

import pytest

from helpers import parse_env, run_testbed


def pytest_configure(config):
    # also registered in pytest.ini; kept here so the mark exists with any ini file
    config.addinivalue_line("markers", "bed: needs the local test bed (etcd, Kafka, Milvus)")
    config.addinivalue_line("markers", "faults: restarts, freezes or kills parts of the bed (run apart: -m faults)")


@pytest.fixture(scope="session")
def bed_env():
    status = run_testbed("status", check=False, timeout=120)
    up_args = ["up"] + (["--replica"] if os.environ.get("TESTBED_REPLICA") == "1" else []) \
        + (["--lite"] if os.environ.get("TESTBED_LITE") == "1" else [])
    started = status.returncode != 0
    try:
        run_testbed(*up_args, timeout=3600)
    except RuntimeError as e:
        pytest.fail(str(e), pytrace=False)
    env = parse_env(run_testbed("env").stdout)
    env["BED_STARTED_BY_PYTEST"] = "1" if started else "0"
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
