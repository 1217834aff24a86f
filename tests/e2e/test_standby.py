"""Standby targets (issue 16): tasks that write to REPLICA, the bed's standby Milvus
(common.ttMsgEnabled=false, refuses plain inserts), through ReplicateMessage with the source's
timestamps, next to tasks that write to the bed's ordinary TARGET through the Milvus API.

- `write_mode: "auto"` (the default) picks `api` on TARGET and `replicate` on REPLICA, and both
  copies equal SOURCE row by row;
- a task created with the official server's documented body (legacy host/port/username/password,
  `collection_infos: [{"name": "*"}]`, `rpc_channel_info`) and no write_mode keeps REPLICA equal
  to SOURCE: rows (INT64 keys over two shards; VARCHAR keys with a partition key and a dynamic
  field), index, load state, a partition created and dropped, collections dropped;
- a Strong-consistency query on REPLICA answers while the task is paused (and still after the
  source has been idle a while), and resume brings the rows written meanwhile;
- `write_mode: "replicate"` against TARGET (ttMsgEnabled=true) pauses the task with a reason
  naming ttMsgEnabled; an unknown write_mode is refused naming the field.

Needs the bed with REPLICA (`scripts/testbed.sh up --replica`, or TESTBED_REPLICA=1; the tests
skip without it). REPLICA and TARGET are reached by their own URIs (REPLICA_MILVUS_URI,
BED_TARGET_MILVUS_URI), so the file runs the same with or without CDC_E2E_TARGET=replica.
Marked `standby`: scripts/test-all.sh runs it in its standby stage, not in the main run.
"""
import time

import pytest
from pymilvus import Collection, CollectionSchema, DataType, FieldSchema, Partition, connections, utility

from cdc_server import CdcServer
from helpers import unique_name, wait_until
import workload

pytestmark = [pytest.mark.bed, pytest.mark.standby]

START_S = 120     # a task to start and detect its write mode
TIMEOUT = 180     # REPLICA or TARGET to equal SOURCE
QUERY_S = 30      # one query's deadline (a Strong read on REPLICA waits for forwarded ticks)
FIELDS = ("pk", "vec", "title", "meta", "extra")
KEYED_FIELDS = FIELDS + ("tenant",)
TENANTS = 5


def log(msg):
    print("[standby %s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


# ------------------------------------------------------------------------------ fixtures

@pytest.fixture(scope="module")
def writable(bed_env):
    """The bed's ordinary TARGET (ttMsgEnabled=true), whatever CDC_E2E_TARGET says."""
    connections.connect(alias="bed_target", uri=bed_env["BED_TARGET_MILVUS_URI"], timeout=60)
    yield "bed_target"
    connections.disconnect("bed_target")


@pytest.fixture
def srv(tmp_path, bed_env):
    """A server of its own; its tasks are deleted at the end."""
    server = CdcServer(tmp_path / "cdc", bed_env=bed_env).start()
    yield server
    try:
        for t in server.post("list").get("data", {}).get("tasks", []):
            server.post("delete", {"task_id": t["task_id"]})
    finally:
        server.stop()


@pytest.fixture
def cleanup():
    """Collections to drop at the end: cleanup(alias, name)."""
    names = []
    yield lambda alias, name: names.append((alias, name))
    for alias, name in names:
        try:
            if utility.has_collection(name, using=alias):
                utility.drop_collection(name, using=alias)
        except Exception as e:  # noqa: BLE001 - best effort
            log("dropping %s on %s: %r" % (name, alias, e))


# ------------------------------------------------------------------------------ helpers

def get(srv, task_id):
    return srv.post("get", {"task_id": task_id})["data"]["task"]


def create(srv, body):
    reply = srv.post("create", body)
    assert reply["code"] == 200, reply
    return reply["data"]["task_id"]


def wait_write_mode(srv, task_id, mode):
    """Waits until the running task shows the write mode it detected (task-level `write_mode`);
    a task that pauses first fails here with its reason."""
    task = wait_until(lambda: (lambda t: t if t.get("write_mode") or t["state"] == "Paused" else None)(
        get(srv, task_id)), START_S, "task %s to detect its write mode" % task_id)
    assert task["state"] == "Running" and task.get("write_mode") == mode, \
        "expected a Running task in %s mode, got state %s, write_mode %r, reason %r" % (
            mode, task["state"], task.get("write_mode"), task.get("reason"))
    return task


def url_for(bed_env, alias):
    return bed_env["REPLICA_MILVUS_URI"] if alias == "replica" else bed_env["BED_TARGET_MILVUS_URI"]


def rows_of(coll, pk_type="int64", fields=FIELDS, consistency="Strong"):
    """Every row by primary key, vectors rounded (as workload.all_rows), one query of QUERY_S."""
    expr = "pk >= 0" if pk_type == "int64" else 'pk != ""'
    out = {}
    for r in coll.query(expr, output_fields=list(fields), consistency_level=consistency, timeout=QUERY_S,
                        limit=16384):
        row = {k: r.get(k) for k in fields}
        row["vec"] = [round(float(x), 5) for x in row["vec"]]
        out[r["pk"]] = row
    return out


def count_of(coll, pk_type="int64", consistency="Strong", expr=None):
    expr = expr or ("pk >= 0" if pk_type == "int64" else 'pk != ""')
    return coll.query(expr, output_fields=["count(*)"], consistency_level=consistency,
                      timeout=QUERY_S)[0]["count(*)"]


def wait_rows_equal(src, dst, pk_type="int64", fields=FIELDS, side="REPLICA"):
    """Polls until `dst` holds exactly SOURCE's rows, field by field; on timeout names the
    keys that are missing, extra or different."""
    expected = rows_of(src, pk_type, fields)
    seen = {}

    def same():
        seen["got"] = rows_of(dst, pk_type, fields)
        return seen["got"] == expected
    try:
        wait_until(same, TIMEOUT, "rows of %s on %s equal to SOURCE's" % (src.name, side), interval=1)
    except AssertionError as e:
        got = seen.get("got")
        if got is None:
            raise
        lost = sorted(set(expected) - set(got))
        extra = sorted(set(got) - set(expected))
        differ = sorted(k for k in set(got) & set(expected) if got[k] != expected[k])
        raise AssertionError("%s\n%s has %d rows, SOURCE %d: missing %d %r, extra %d %r, different %d %r" % (
            e, side, len(got), len(expected), len(lost), lost[:10], len(extra), extra[:10], len(differ),
            [(k, expected[k], got[k]) for k in differ[:2]])) from None
    assert count_of(dst, pk_type) == len(expected), "%s holds doubled rows of %s" % (side, src.name)
    return expected


def wait_loaded(alias, name, side="REPLICA"):
    wait_until(lambda: utility.has_collection(name, using=alias), TIMEOUT, "%s on %s" % (name, side))
    wait_until(lambda: str(utility.load_state(name, using=alias)) == "Loaded", TIMEOUT,
               "%s loaded on %s, as on SOURCE" % (name, side))
    return Collection(name, using=alias)


def keyed_schema():
    """workload's schema (VARCHAR key, dynamic field) plus a VARCHAR partition key."""
    s = workload.schema("varchar")
    return CollectionSchema(s.fields + [FieldSchema("tenant", DataType.VARCHAR, max_length=16,
                                                    is_partition_key=True)],
                            description="standby partition key", enable_dynamic_field=True)


def keyed_rows(pks, tag="v1"):
    out = workload.rows(pks, tag=tag)
    for r in out:
        r["tenant"] = "t%d" % (int(r["pk"][1:]) % TENANTS)
    return out


def int_workload(coll, n=2000):
    """Inserts 0..n-1, deletes every 20th key, upserts 1..50 (bringing back 20 and 40)."""
    for start in range(0, n, 1000):
        coll.insert(workload.rows(list(range(start, min(n, start + 1000)))))
    coll.delete(workload.pk_expr(list(range(0, n, 20))))
    coll.upsert(workload.rows(list(range(1, 51)), tag="v2"))
    return n - n // 20 + 2


# ------------------------------------------------------------------------------ tests

def test_auto_picks_api_on_target_and_replicate_on_replica(srv, bed_env, source, replica, writable, cleanup):
    """Two tasks without write_mode, one per target: `get` shows `auto` as asked and the mode
    each detected; both copies equal SOURCE row by row."""
    names = {writable: unique_name("sb_api"), replica: unique_name("sb_rep")}
    modes = {writable: "api", replica: "replicate"}
    tasks = {}
    for alias, name in names.items():
        cleanup("source", name)
        cleanup(alias, name)
        tasks[alias] = create(srv, {"milvus_connect_param": {"uri": url_for(bed_env, alias), "connect_timeout": 10},
                                    "collection_infos": [{"name": name}]})
    for alias, task_id in tasks.items():
        task = wait_write_mode(srv, task_id, modes[alias])
        assert task["milvus_connect_param"]["write_mode"] == "auto", task["milvus_connect_param"]
        listed = {t["task_id"]: t for t in srv.post("list")["data"]["tasks"]}
        assert listed[task_id].get("write_mode") == modes[alias], listed[task_id]
        log("task %s: write_mode %s" % (task_id, modes[alias]))

    srcs = {}
    for alias, name in names.items():
        srcs[alias] = workload.create_collection("source", name, shards=2)
        expected = int_workload(srcs[alias], 600)
        workload.ensure_index_and_load(srcs[alias])
    for alias, name in names.items():
        side = "REPLICA" if alias == replica else "TARGET"
        dst = wait_loaded(alias, name, side)
        assert len(wait_rows_equal(srcs[alias], dst, side=side)) == expected
        assert workload.field_summary(dst) == workload.field_summary(srcs[alias])
        assert get(srv, tasks[alias])["state"] == "Running"


def test_official_body_keeps_replica_equal_to_source(srv, bed_env, source, replica, cleanup):
    """The official server's documented `create` body, unchanged, against a standby."""
    host, port = bed_env["REPLICA_MILVUS_URI"].split("://", 1)[1].rsplit(":", 1)
    task_id = create(srv, {
        "milvus_connect_param": {"host": host, "port": int(port), "username": "root", "password": "Milvus",
                                 "enable_tls": False, "connect_timeout": 10},
        "collection_infos": [{"name": "*"}],
        "rpc_channel_info": {"name": bed_env["SOURCE_REPLICATE_CHANNEL"]}})
    task = wait_write_mode(srv, task_id, "replicate")
    assert task["milvus_connect_param"]["write_mode"] == "auto", task["milvus_connect_param"]

    ints, keyed, ddl = unique_name("sb_int"), unique_name("sb_key"), unique_name("sb_ddl")
    for name in (ints, keyed, ddl):
        cleanup("source", name)
        cleanup(replica, name)

    # INT64 keys over two shards: inserts, deletes, upserts; a named IVF index; loaded
    src_i = workload.create_collection("source", ints, shards=2)
    n_ints = int_workload(src_i, 2000)
    src_i.create_index("vec", {"index_type": "IVF_FLAT", "metric_type": "IP", "params": {"nlist": 16}},
                       index_name="vec_ivf", timeout=120)
    src_i.load(timeout=300)

    # VARCHAR keys, a partition key (4 partitions) and a dynamic field
    src_k = Collection(keyed, keyed_schema(), using="source", shards_num=2, num_partitions=4,
                       consistency_level="Strong")
    keys = ["k%04d" % i for i in range(400)]
    src_k.insert(keyed_rows(keys[:250]))
    src_k.insert(keyed_rows(keys[250:]))
    src_k.delete(workload.pk_expr(keys[::10]))                     # 40 deletes
    src_k.upsert(keyed_rows(keys[0:40:2], tag="v2"))               # 20 upserts, 4 bring deleted keys back
    workload.ensure_index_and_load(src_k)

    # DDL only: a partition created (with rows) and dropped, then the collection dropped
    src_d = workload.create_collection("source", ddl, shards=1)
    src_d.create_partition("px")
    Partition(src_d, "px").insert(workload.rows(list(range(10))))

    rep_i = wait_loaded(replica, ints)
    assert len(wait_rows_equal(src_i, rep_i)) == n_ints
    assert workload.field_summary(rep_i) == workload.field_summary(src_i)
    assert rep_i.describe()["num_shards"] == src_i.describe()["num_shards"] == 2
    wait_until(lambda: rep_i.has_index(), TIMEOUT, "the index of %s on REPLICA" % ints)
    assert rep_i.index().index_name == "vec_ivf" and rep_i.index().params == src_i.index().params

    rep_k = wait_loaded(replica, keyed)
    assert len(wait_rows_equal(src_k, rep_k, "varchar", KEYED_FIELDS)) == 400 - 40 + 4
    assert rep_k.describe()["num_partitions"] == src_k.describe()["num_partitions"] == 4
    # each row sits in the same partition as on SOURCE: a query filtered on the key answers the same
    for t in range(TENANTS):
        expr = 'tenant == "t%d"' % t
        assert count_of(rep_k, expr=expr) == count_of(src_k, expr=expr), expr

    wait_until(lambda: utility.has_collection(ddl, using=replica) and Collection(ddl, using=replica).has_partition("px"),
               TIMEOUT, "%s with partition px on REPLICA" % ddl)
    src_d.drop_partition("px")
    wait_until(lambda: not Collection(ddl, using=replica).has_partition("px"), TIMEOUT, "px dropped on REPLICA")
    src_d.drop()
    wait_until(lambda: not utility.has_collection(ddl, using=replica), TIMEOUT, "%s dropped on REPLICA" % ddl)
    src_i.drop()
    wait_until(lambda: not utility.has_collection(ints, using=replica), TIMEOUT,
               "%s (loaded) dropped on REPLICA" % ints)
    assert get(srv, task_id)["state"] == "Running"


def test_strong_query_on_replica_answers_while_paused(srv, bed_env, source, replica, cleanup):
    """A paused replicate task keeps REPLICA readable: a Strong query answers within its
    deadline, also after the source has been idle a while; rows written while paused arrive
    after resume."""
    name = unique_name("sb_pause")
    cleanup("source", name)
    cleanup(replica, name)
    task_id = create(srv, {"milvus_connect_param": {"uri": bed_env["REPLICA_MILVUS_URI"], "connect_timeout": 10},
                           "collection_infos": [{"name": name}]})
    wait_write_mode(srv, task_id, "replicate")
    src = workload.create_collection("source", name, shards=2)
    src.insert(workload.rows(list(range(500))))
    workload.ensure_index_and_load(src)
    rep = wait_loaded(replica, name)
    assert len(wait_rows_equal(src, rep)) == 500

    assert srv.post("pause", {"task_id": task_id})["code"] == 200
    assert get(srv, task_id)["state"] == "Paused"
    for i in range(3):
        t0 = time.monotonic()
        got = count_of(rep, consistency="Strong")  # one query; raises when its 30 s deadline passes
        log("Strong count(*) on REPLICA, paused for %.0fs: %d in %.2fs" % (5 * i, got, time.monotonic() - t0))
        assert got == 500
        if i < 2:
            time.sleep(5)  # the scenario itself: the source stays idle while the task is paused

    # SOURCE changes while the task is paused: nothing reaches REPLICA until resume
    src.insert(workload.rows(list(range(500, 700))))
    src.delete(workload.pk_expr(list(range(0, 500, 25))))          # 20 deletes
    assert count_of(src) == 680
    assert count_of(rep, consistency="Eventually") == 500, "a paused task wrote to REPLICA"
    assert srv.post("resume", {"task_id": task_id})["code"] == 200
    wait_until(lambda: get(srv, task_id)["state"] == "Running", 60, "the task to run again")
    assert len(wait_rows_equal(src, rep)) == 680


def test_replicate_mode_on_a_writable_target_pauses_naming_ttmsgenabled(srv, bed_env, source, writable, cleanup):
    name = unique_name("sb_wrong")
    cleanup("source", name)
    cleanup(writable, name)
    task_id = create(srv, {"milvus_connect_param": {"uri": bed_env["BED_TARGET_MILVUS_URI"], "connect_timeout": 10,
                                                    "write_mode": "replicate"},
                           "collection_infos": [{"name": name}]})
    assert get(srv, task_id)["milvus_connect_param"]["write_mode"] == "replicate"
    src = workload.create_collection("source", name, shards=1)
    src.insert(workload.rows(list(range(10))))
    task = wait_until(lambda: (lambda t: t if t["state"] == "Paused" else None)(get(srv, task_id)), START_S,
                      "the task to pause on a target with ttMsgEnabled=true")
    log("paused: %s" % task.get("reason"))
    assert "ttMsgEnabled" in task.get("reason", ""), task


def test_unknown_write_mode_is_refused_naming_the_field(srv, bed_env):
    reply = srv.post("create", {"milvus_connect_param": {"uri": bed_env["BED_TARGET_MILVUS_URI"], "write_mode": "bogus"},
                                "collection_infos": [{"name": "*"}]})
    assert reply["code"] == 400 and "milvus_connect_param.write_mode" in reply.get("message", ""), reply
    assert "data" not in reply, reply
    assert srv.post("list")["data"]["tasks"] == [], "a refused create stored a task"
