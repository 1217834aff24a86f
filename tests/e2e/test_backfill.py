"""Backfill end to end: a task created with "backfill": true copies the rows SOURCE already
holds (110 000 rows in three collections of two databases: INT64 and VARCHAR keys, two
partitions, a partition-key collection, dynamic fields) while a writer keeps inserting,
upserting and deleting in the same key ranges, the server is killed with SIGKILL in the middle
of the copy, and in the end TARGET holds exactly SOURCE's rows: none missing, doubled or stale.
Then rows removed directly on TARGET come back with an on-demand `backfill` request."""
import random
import signal

import pytest
from pymilvus import Collection, CollectionSchema, DataType, FieldSchema, Partition, connections, db, utility

from cdc_server import CdcServer, wait_until
from helpers import unique_name
import workload

# backfill writes rows with plain Upsert calls, which a standby (write_mode replicate) refuses;
# the first test also deletes rows directly on TARGET
pytestmark = [pytest.mark.bed, pytest.mark.writable_target("backfill copies rows with plain Upsert calls")]

TIMEOUT = 300
FIELDS = ("pk", "vec", "title", "meta", "extra")


def pkey_schema():
    """workload's schema (dynamic field on) plus a VARCHAR partition key."""
    s = workload.schema("int64")
    return CollectionSchema(s.fields + [FieldSchema("tenant", DataType.VARCHAR, max_length=16, is_partition_key=True)],
                            description="backfill partition key", enable_dynamic_field=True)


def pkey_rows(pks, tag="v1"):
    out = workload.rows(pks, tag=tag)
    for r in out:
        r["tenant"] = "t%d" % (r["pk"] % 7)
    return out


def insert_all(coll, keys, make_rows=workload.rows, partition=None):
    for i in range(0, len(keys), 5000):
        data = make_rows(keys[i:i + 5000], tag="old")
        (Partition(coll, partition) if partition else coll).insert(data, timeout=120)


def connect(bed_env, side, dbname):
    alias = "bf_%s_%s" % (side, dbname)
    if not connections.has_connection(alias):
        uri = bed_env["SOURCE_MILVUS_URI" if side == "src" else "TARGET_MILVUS_URI"]
        connections.connect(alias=alias, uri=uri, db_name=dbname, timeout=60)
    return alias


def all_rows(coll, pk_type, fields=FIELDS):
    """Every row by primary key, paged in key order (a collection larger than one query)."""
    out, last = {}, None
    while True:
        expr = ("pk > %d" % last if pk_type == "int64" else 'pk > "%s"' % last) if last is not None else \
            ("pk >= 0" if pk_type == "int64" else 'pk != ""')
        page = coll.query(expr, output_fields=list(fields), consistency_level="Strong", limit=16384, timeout=120)
        if not page:
            return out
        for r in page:
            row = {k: r.get(k) for k in fields}
            if row.get("vec") is not None:
                row["vec"] = [round(float(x), 5) for x in row["vec"]]
            out[r["pk"]] = row
        last = max(r["pk"] for r in page)


def assert_same_rows(expected, read_target, what):
    """Waits for TARGET's rows to equal `expected`; on timeout names the keys that differ."""
    got = {}

    def same():
        got.clear()
        got.update(read_target())
        return got == expected
    try:
        wait_until(same, TIMEOUT, interval=2, what=f"{what}: TARGET equal to SOURCE row by row")
    except AssertionError:
        missing = sorted(set(expected) - set(got))
        extra = sorted(set(got) - set(expected))
        changed = sorted(k for k in set(expected) & set(got) if expected[k] != got[k])
        raise AssertionError(f"{what}: {len(missing)} missing {missing[:10]}, {len(extra)} extra {extra[:10]}, "
                             f"{len(changed)} different " +
                             "; ".join(f"{k}: SOURCE {expected[k]} TARGET {got[k]}" for k in changed[:3])) from None


def count_star(coll, pk_type):
    expr = "pk >= 0" if pk_type == "int64" else 'pk != ""'
    return coll.query(expr, output_fields=["count(*)"], consistency_level="Strong", timeout=120)[0]["count(*)"]


@pytest.fixture(scope="module")
def bed(bed_env, source, target):
    """Two databases on SOURCE with 110 000 rows written before any task exists."""
    d1, d2 = unique_name("bf1"), unique_name("bf2")
    for d in (d1, d2):
        db.create_database(d, using="source")
    s1, s2 = connect(bed_env, "src", d1), connect(bed_env, "src", d2)
    ints = workload.create_collection(s1, "ints", shards=2)
    ints.create_partition("p1")
    insert_all(ints, list(range(0, 10_000)), partition="p1")
    insert_all(ints, list(range(10_000, 45_000)))
    strs = workload.create_collection(s1, "strs", pk_type="varchar", shards=4)
    insert_all(strs, ["k%08d" % i for i in range(35_000)])
    pkey = Collection("pkey", pkey_schema(), using=s2, shards_num=2, num_partitions=8, consistency_level="Strong")
    insert_all(pkey, list(range(30_000)), make_rows=pkey_rows)
    for c in (ints, strs, pkey):
        workload.ensure_index_and_load(c)
    yield {"dbs": (d1, d2), "colls": {"ints": (ints, "int64", 45_000), "strs": (strs, "varchar", 35_000),
                                      "pkey": (pkey, "int64", 30_000)}}
    for side in ("src", "tgt"):
        for d in (d1, d2):
            try:
                alias = connect(bed_env, side, d)
                for name in utility.list_collections(using=alias):
                    Collection(name, using=alias).drop()
                db.drop_database(d, using="source" if side == "src" else "target")
            except Exception:  # noqa: BLE001 - not on TARGET
                pass


def stream_targets(bed):
    """The writer's view of the three collections: the existing keys are live, new ones follow."""
    targets = []
    for name, (coll, pk_type, n) in bed["colls"].items():
        t = workload.StreamTarget(coll, pk_type, make_rows=pkey_rows if name == "pkey" else None)
        keys = list(range(n)) if pk_type == "int64" else ["k%08d" % i for i in range(n)]
        t.universe.update(keys)
        t.live.update(keys)
        t.next_id = n
        targets.append(t)
    return targets


def get(srv, task_id):
    return srv.post("get", {"task_id": task_id})["data"]["task"]


def test_backfill_while_streaming_survives_kill_9(tmp_path_factory, bed_env, bed):
    d1, d2 = bed["dbs"]
    srv = CdcServer(tmp_path_factory.mktemp("backfill"), bed_env=bed_env,
                    config_overrides={"maxChunkBytes": 256 << 10}).start()
    try:
        reply = srv.post("create", {"milvus_connect_param": {"uri": bed_env["TARGET_MILVUS_URI"], "connect_timeout": 10},
                                    "db_collections": {d1: [{"name": "*"}], d2: [{"name": "*"}]}, "backfill": True})
        assert reply["code"] == 200, reply
        task_id = reply["data"]["task_id"]
        writer = workload.WriteStream(stream_targets(bed), seed=14, insert_n=30, delete_n=10, upsert_n=20,
                                      pause_s=0.1).start()

        def copying():
            b = get(srv, task_id).get("backfill_progress", [])
            return len(b) == 3 and any(x["rows_copied"] > 0 for x in b) and b
        progress = wait_until(copying, TIMEOUT, interval=0.1, what="the backfill to copy rows")
        assert {(x["db"], x["name"]) for x in progress} == {(d1, "ints"), (d1, "strs"), (d2, "pkey")}
        srv.stop(sig=signal.SIGKILL)  # in the middle of the copy
        srv.start()

        def done():
            b = get(srv, task_id).get("backfill_progress", [])
            assert not [x for x in b if x["state"] == "failed"], b
            return len(b) == 3 and all(x["state"] == "done" for x in b) and b
        final = wait_until(done, TIMEOUT, interval=1, what="every backfill to finish")
        writer.wait_cycles(3)
        writer.stop()
        assert writer.counts["delete"] > 0 and writer.counts["upsert"] > 0
        for b in final:
            assert b["rows_estimated"] >= {"ints": 45_000, "strs": 35_000, "pkey": 30_000}[b["name"]], b
        metrics = srv.metrics()
        for b in final:  # the same progress in Prometheus (copied since the restart; state 2 = done)
            labels = 'task_id="%s",db="%s",collection="%s"' % (task_id, b["db"], b["name"])
            assert 'milvus_cdc_backfill_state{%s} 2' % labels in metrics, labels
            assert 'milvus_cdc_backfill_rows_total{%s}' % labels in metrics

        t1, t2 = connect(bed_env, "tgt", d1), connect(bed_env, "tgt", d2)
        for name, (src, pk_type, _) in bed["colls"].items():
            tgt = Collection(name, using=t1 if name != "pkey" else t2)
            workload.ensure_index_and_load(tgt)
            # Partition by partition where the rows name one: Milvus 2.3 keeps a key in two
            # partitions when an upsert into _default meets a key of p1, and so must TARGET.
            parts = [p.name for p in src.partitions] if name == "ints" else [None]
            for part in parts:
                s_side = Partition(src, part) if part else src
                t_side = Partition(tgt, part) if part else tgt
                expected = all_rows(s_side, pk_type)
                assert_same_rows(expected, lambda: all_rows(t_side, pk_type), f"{name}/{part}")
            assert count_star(tgt, pk_type) == count_star(src, pk_type), f"{name}: doubled or missing rows on TARGET"
        assert get(srv, task_id)["state"] == "Running"
        part = Partition(Collection("ints", using=t1), "p1")
        assert part.query("pk < 10000", output_fields=["count(*)"],
                          consistency_level="Strong")[0]["count(*)"] > 9_000  # partition p1 kept its rows

        # Repair by hand: rows removed directly on TARGET come back with a `backfill` request.
        tgt_strs = Collection("strs", using=t1)
        gone = ["k%08d" % i for i in random.Random(3).sample(range(35_000), 50)]
        tgt_strs.delete(workload.pk_expr(gone))
        reply = srv.post("backfill", {"task_id": task_id, "collections": [{"db": d1, "name": "strs"}]})
        assert reply["code"] == 200, reply
        expected = all_rows(bed["colls"]["strs"][0], "varchar")
        assert_same_rows(expected, lambda: all_rows(tgt_strs, "varchar"), "strs repaired")
        assert count_star(tgt_strs, "varchar") == len(expected)
        srv.post("delete", {"task_id": task_id})
    finally:
        srv.stop()


def test_collection_renamed_into_scope_is_backfilled(tmp_path_factory, bed_env, source, target):
    """A collection with rows outside the task's scope is renamed into it: the task creates it on
    TARGET and copies the rows it already held."""
    before, after = unique_name("bf_out"), unique_name("bf_in")
    src = workload.create_collection("source", before, shards=1)
    insert_all(src, list(range(6000)))
    workload.ensure_index_and_load(src)
    srv = CdcServer(tmp_path_factory.mktemp("backfill_rename"), bed_env=bed_env).start()
    try:
        reply = srv.post("create", {"milvus_connect_param": {"uri": bed_env["TARGET_MILVUS_URI"], "connect_timeout": 10},
                                    "collection_infos": [{"name": after}], "backfill": True})
        assert reply["code"] == 200, reply
        task_id = reply["data"]["task_id"]
        wait_until(lambda: "replicating" in get(srv, task_id).get("reason", ""), 60, what="the task to start")
        assert get(srv, task_id).get("backfill_progress", []) == [], "nothing in scope yet"
        utility.rename_collection(before, after, using="source")

        def copied():
            b = get(srv, task_id).get("backfill_progress", [])
            assert not [x for x in b if x["state"] == "failed"], b
            return [x for x in b if x["name"] == after and x["state"] == "done"]
        wait_until(copied, TIMEOUT, interval=1, what="the renamed collection copied")
        tgt = Collection(after, using="target")
        workload.ensure_index_and_load(tgt)
        src = Collection(after, using="source")
        assert_same_rows(all_rows(src, "int64"), lambda: all_rows(tgt, "int64"), after)
        assert count_star(tgt, "int64") == count_star(src, "int64") == 6000
        assert get(srv, task_id)["state"] == "Running"
        srv.post("delete", {"task_id": task_id})
    finally:
        srv.stop()
        for alias in ("source", "target"):
            for name in (before, after):
                if utility.has_collection(name, using=alias):
                    utility.drop_collection(name, using=alias)
