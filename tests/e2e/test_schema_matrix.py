"""Schema matrix end to end: for every schema shape Milvus 2.3 allows (schema_matrix.CASES), a
replica made by a milvus-cdc task equals its source, compared the way an operator would.

One server and one task scoped to a database of the module's own. A few collections are created
(indexed, loaded) before the task starts, the rest after; then every collection gets its inserts,
deletes and upserts, and one polling loop waits until each TARGET collection equals its SOURCE
collection or a deadline passes (or the task pauses). Each case is then a test of its own.
"""
import re
import time
from dataclasses import dataclass, field

import pytest
from pymilvus import Collection, connections, db, utility

import schema_matrix as sm
from cdc_server import CdcServer
from helpers import Deadline, unique_name, wait_until

pytestmark = pytest.mark.bed

SRC, TGT = "matrix_source", "matrix_target"  # aliases bound to the module's database
WAIT_S = 120                                  # for TARGET to equal SOURCE, all cases together


@dataclass
class Matrix:
    db: str
    names: dict                                   # case name -> collection name
    src: dict = field(default_factory=dict)       # case name -> sm.Snapshot of SOURCE
    tgt: dict = field(default_factory=dict)       # case name -> last sm.Snapshot of TARGET
    diffs: dict = field(default_factory=dict)     # case name -> differences (empty: equal)
    waited_s: float = 0.0
    task: dict = field(default_factory=dict)      # `get` at the end of the wait
    log_tail: str = ""


def get_task(srv):
    return srv.post("get", {"task_id": srv.task_id})["data"]["task"]


def load_state(alias, dbname, name):
    return sm.describe(alias, dbname, name)["load_state"]


def connect_target(bed_env, dbname):
    """The TARGET alias, once the task has created the database there."""
    if connections.has_connection(TGT):
        return True
    if dbname not in db.list_database(using="target"):
        return False
    connections.connect(alias=TGT, uri=bed_env["TARGET_MILVUS_URI"], db_name=dbname, timeout=60)
    return True


def read_target(m, case):
    """TARGET's snapshot of one case and its differences from SOURCE's."""
    name, src = m.names[case.name], m.src[case.name]
    try:
        tgt = sm.snapshot(case, TGT, m.db, name, source_rows=src.rows)
        if (case.partition_key is not None and tgt.rows == src.rows
                and tgt.partition_rows != src.partition_rows):
            # rows per partition are counted in flushed segments: flush TARGET as an operator would
            Collection(name, using=TGT).flush(timeout=120)
            tgt.partition_rows = sm.partition_rows(TGT, m.db, name, tgt.meta["partitions"])
    except Exception as e:  # noqa: BLE001 - not there yet, not loaded yet: "not equal yet"
        return None, ["TARGET not readable: %s" % str(e).splitlines()[0][:300]]
    return tgt, sm.compare(case, src, tgt)


def wait_for_target(m, srv, bed_env):
    """One loop for all cases: until each equals SOURCE, the deadline, or the task pauses."""
    pending = list(sm.CASE_NAMES)
    dl, interval, t0 = Deadline(WAIT_S), 1.0, time.monotonic()
    while True:
        m.task = get_task(srv)
        final = m.task.get("state") == "Paused" or dl.expired()
        if not connect_target(bed_env, m.db):
            for n in pending:
                m.diffs[n] = ["database %s not on TARGET" % m.db]
        else:
            done = sm.parallel(lambda n: read_target(m, sm.CASE_BY_NAME[n]), pending)
            for n, (snap, diffs) in zip(pending, done):
                m.tgt[n] = snap or m.tgt.get(n)
                m.diffs[n] = diffs
            pending = [n for n in pending if m.diffs[n]]
        if not pending or final:
            break
        time.sleep(min(interval, dl.left()))
        interval = min(interval * 1.5, 5.0)
    m.waited_s = time.monotonic() - t0


@pytest.fixture(scope="module")
def matrix(tmp_path_factory, bed_env, source, target):
    t0 = time.monotonic()
    phases = []

    def phase(what):
        phases.append("%s %.1fs" % (what, time.monotonic() - t0))

    m = Matrix(db=unique_name("matrix"), names={c.name: unique_name(c.name) for c in sm.CASES})
    db.create_database(m.db, using="source")
    connections.connect(alias=SRC, uri=bed_env["SOURCE_MILVUS_URI"], db_name=m.db, timeout=60)
    srv = None
    colls = {}
    try:
        def create(case):
            colls[case.name] = sm.create(case, SRC, m.names[case.name])

        def loaded(cases):
            return all(load_state(SRC, m.db, m.names[c.name]) == "LoadStateLoaded" for c in cases)

        before = [c for c in sm.CASES if c.before]
        after = [c for c in sm.CASES if not c.before]
        sm.parallel(create, before)
        wait_until(lambda: loaded(before), 120, "the collections made before the task loaded on SOURCE")
        phase("before-task collections")

        srv = CdcServer(tmp_path_factory.mktemp("matrix"), bed_env=bed_env).start()
        reply = srv.post("create", {
            "milvus_connect_param": {"uri": bed_env["TARGET_MILVUS_URI"], "connect_timeout": 10},
            "db_collections": {m.db: [{"name": "*"}]}})
        assert reply["code"] == 200, reply
        srv.task_id = reply["data"]["task_id"]
        wait_until(lambda: "replicating" in get_task(srv).get("reason", ""), 60, "the task to start replicating")
        phase("task started")

        sm.parallel(create, after)
        phase("after-task collections")
        sm.parallel(lambda c: sm.write(c, colls[c.name]), sm.CASES)
        for c in sm.CASES:
            if c.partition_key is not None:  # rows per partition are counted in flushed segments
                colls[c.name].flush(timeout=120)
        wait_until(lambda: loaded(sm.CASES), 120, "every collection loaded on SOURCE")
        phase("rows written")

        snaps = sm.parallel(lambda c: sm.snapshot(c, SRC, m.db, m.names[c.name]), sm.CASES)
        m.src = dict(zip(sm.CASE_NAMES, snaps))
        phase("SOURCE read")
        wait_for_target(m, srv, bed_env)
        phase("TARGET compared")
        m.log_tail = "\n".join(line for line in srv.log().splitlines()
                               if re.match(r"\S+ [WE] ", line))[-3000:]
        print("\n[matrix] %s; %d of %d cases equal; task %s: %s"
              % ("; ".join(phases), sum(not d for d in m.diffs.values()), len(sm.CASES),
                 m.task.get("state"), m.task.get("reason")))
        yield m
    finally:
        cleanup(srv, m, bed_env)


def cleanup(srv, m, bed_env):
    """Deletes the task, stops the server, drops the database on both sides; every step is tried
    and the failures reported together."""
    errors = []

    def attempt(what, fn):
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - try the other steps, report at the end
            errors.append("%s: %r" % (what, e))

    def drop_database(alias, default_alias):
        for name in utility.list_collections(using=alias):
            utility.drop_collection(name, using=alias)
        db.drop_database(m.db, using=default_alias)

    if srv is not None:
        if getattr(srv, "task_id", None):
            attempt("delete the task", lambda: srv.post("delete", {"task_id": srv.task_id}))
        attempt("stop the server", srv.stop)
    attempt("drop %s on SOURCE" % m.db, lambda: drop_database(SRC, "source"))
    attempt("drop %s on TARGET" % m.db, lambda: connect_target(bed_env, m.db) and drop_database(TGT, "target"))
    for alias in (SRC, TGT):
        if connections.has_connection(alias):
            connections.disconnect(alias)
    assert not errors, "cleanup failed: %s" % "; ".join(errors)


def explain(m, name):
    t = m.task
    return "\n".join([
        "%s (collection %s) differs on TARGET after %.0fs (%d differences):"
        % (name, m.names[name], m.waited_s, len(m.diffs[name]))]
        + ["  " + d for d in m.diffs[name][:25]]
        + ["task %s: %s" % (t.get("state"), str(t.get("reason"))[:400])])


@pytest.mark.parametrize("name", sm.CASE_NAMES)
def test_replica_equals_source(matrix, name):
    """Schema, partitions, indexes, load state, shards, consistency level, properties, every row
    by primary key, count(*); for partition-key collections a search filtered on the key and the
    rows per `_default_N` partition."""
    assert not matrix.diffs[name], explain(matrix, name)


def test_source_has_the_asked_shapes(matrix):
    """The comparison means something only if SOURCE holds what each case asked for."""
    wrong = {}
    for case in sm.CASES:
        meta = matrix.src[case.name].meta
        got = (meta["shards_num"], meta["consistency_level"], meta["properties"], meta["enable_dynamic_field"],
               [f["name"] for f in meta["fields"]], sorted(meta["indexes"]), len(matrix.src[case.name].rows))
        asked = (case.shards, case.consistency, {**case.properties, **case.altered}, case.dynamic,
                 [f.name for f in case.fields], sorted(ix[2] for ix in case.indexes),
                 sm.ROWS - sm.DELETED + (0 if case.auto_id else 10))
        if got != asked:
            wrong[case.name] = (got, asked)
    assert not wrong, wrong


@pytest.mark.parametrize("name", [c.name for c in sm.CASES if c.auto_id])
def test_auto_id_is_off_on_target(matrix, name):
    """The intended difference: TARGET's primary key takes the source's values, so auto_id is off."""
    src, tgt = matrix.src[name], matrix.tgt.get(name)
    pk = sm.CASE_BY_NAME[name].pk.name
    assert [f["auto_id"] for f in src.meta["fields"] if f["name"] == pk] == [True]
    assert tgt is not None, explain(matrix, name)
    assert [f["auto_id"] for f in tgt.meta["fields"] if f["name"] == pk] == [False], explain(matrix, name)
    assert [f for f in tgt.meta["fields"] if f["name"] != pk] == [f for f in src.meta["fields"] if f["name"] != pk]


@pytest.mark.parametrize("name", [c.name for c in sm.CASES if c.partition_key is not None])
def test_partition_key_rows_spread_on_source(matrix, name):
    """The per-partition comparison means something only if SOURCE hashed the keys to many partitions."""
    src = matrix.src[name]
    case = sm.CASE_BY_NAME[name]
    assert src.meta["num_partitions"] == case.num_partitions
    assert src.meta["partitions"] == sorted("_default_%d" % i for i in range(case.num_partitions))
    assert sum(1 for n in src.partition_rows.values() if n > 0) >= case.num_partitions // 2, src.partition_rows
    assert sum(src.partition_rows.values()) == sm.ROWS + sm.UPSERTED  # an upsert writes its rows again
    assert all(hits for hits in src.searches.values()), src.searches


def test_task_keeps_running(matrix):
    """No case paused the task."""
    t = matrix.task
    assert t.get("state") == "Running", "task %s: %r (last_error %r)\n%s" % (
        t.get("state"), t.get("reason"), t.get("last_error"), matrix.log_tail)
