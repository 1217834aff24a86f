"""`verify` end to end: a streaming task over three collections (INT64 keys with three partitions,
an ARRAY and a dynamic field; VARCHAR keys with a partition key; a binary-vector one), created
after the task so everything streams. While a writer keeps inserting, upserting and deleting,
`verify` reports equal at the keys and rows levels; after rows are deleted, changed and added
directly on TARGET it reports exactly those keys, and `milvus-cdc verify` gives the same verdict
with its exit codes. Then `repair` re-copies exactly those keys through the backfill path and
verifies them again: TARGET equal to SOURCE."""
import json
import random
import subprocess
import threading
import time

import pytest
from pymilvus import Collection, CollectionSchema, DataType, FieldSchema, utility

from cdc_server import BINARY, CdcServer, wait_until
from helpers import unique_name

pytestmark = [pytest.mark.bed,
              pytest.mark.writable_target("verify and repair are checked against rows deleted, changed and added on TARGET")]

TIMEOUT = 120
DIM = 8
PARTS = ["_default", "p1", "p2"]


def schema_a():
    return CollectionSchema([
        FieldSchema("pk", DataType.INT64, is_primary=True),
        FieldSchema("vec", DataType.FLOAT_VECTOR, dim=DIM),
        FieldSchema("title", DataType.VARCHAR, max_length=64),
        FieldSchema("meta", DataType.JSON),
        FieldSchema("tags", DataType.ARRAY, element_type=DataType.INT64, max_capacity=4),
    ], enable_dynamic_field=True)


def schema_b():
    return CollectionSchema([
        FieldSchema("pk", DataType.VARCHAR, is_primary=True, max_length=32),
        FieldSchema("tenant", DataType.INT64, is_partition_key=True),
        FieldSchema("vec", DataType.FLOAT_VECTOR, dim=DIM),
        FieldSchema("score", DataType.DOUBLE),
    ], enable_dynamic_field=True)


def schema_c():
    return CollectionSchema([
        FieldSchema("pk", DataType.INT64, is_primary=True),
        FieldSchema("bvec", DataType.BINARY_VECTOR, dim=16),
        FieldSchema("n", DataType.INT16),
    ])


def row_a(k, tag, rnd):
    return {"pk": k, "vec": [rnd.random() for _ in range(DIM)], "title": "%s-%d" % (tag, k),
            "meta": {"k": k, "tag": tag, "nested": {"b": 1, "a": [1, 2]}}, "tags": [k % 7, 1],
            "color": rnd.choice(["red", "blue"])}


def row_b(k, tenant, tag, rnd):
    return {"pk": k, "tenant": tenant, "vec": [rnd.random() for _ in range(DIM)], "score": rnd.random(),
            "origin": tag}


def expr(keys):
    return "pk in [%s]" % ",".join(json.dumps(k) for k in keys)


class Writer:
    """Inserts, upserts and deletes on SOURCE in A (every partition) and B until stopped."""

    def __init__(self, a, b, a_parts, b_tenants):
        self.a, self.b, self.a_parts, self.b_tenants = a, b, a_parts, b_tenants
        self.rnd = random.Random(7)
        self.next_a, self.next_b = 100_000, 100_000
        self.cycles, self.error = 0, None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join(120)
        assert not self._thread.is_alive()
        assert self.error is None, self.error

    def _cycle(self):
        rnd, tag = self.rnd, "w%d" % self.cycles
        part = rnd.choice(PARTS)
        keys = list(range(self.next_a, self.next_a + 20))
        self.next_a += 20
        self.a.insert([row_a(k, tag, rnd) for k in keys], partition_name=part, timeout=30)
        self.a_parts.update({k: part for k in keys})
        for p in PARTS:  # upserts stay in the key's partition
            ups = [k for k in rnd.sample(sorted(self.a_parts), 6) if self.a_parts[k] == p]
            if ups:
                self.a.upsert([row_a(k, tag + "u", rnd) for k in ups], partition_name=p, timeout=30)
        dels = rnd.sample(sorted(self.a_parts), 4)
        self.a.delete(expr(dels), timeout=30)
        for k in dels:
            del self.a_parts[k]

        keys = ["w%07d" % i for i in range(self.next_b, self.next_b + 20)]
        self.next_b += 20
        tenants = {k: rnd.randrange(10) for k in keys}
        self.b.insert([row_b(k, tenants[k], tag, rnd) for k in keys], timeout=30)
        self.b_tenants.update(tenants)
        ups = rnd.sample(sorted(self.b_tenants), 5)
        self.b.upsert([row_b(k, self.b_tenants[k], tag + "u", rnd) for k in ups], timeout=30)
        dels = rnd.sample(sorted(self.b_tenants), 4)
        self.b.delete(expr(dels), timeout=30)
        for k in dels:
            del self.b_tenants[k]
        self.cycles += 1

    def _run(self):
        try:
            while not self._stop.is_set():
                self._cycle()
                self._stop.wait(0.2)
        except BaseException as e:  # noqa: BLE001 - reported by stop()
            self.error = e


def keys_of(coll, varchar=False):
    res = coll.query('pk != ""' if varchar else "pk >= 0", output_fields=["pk"], consistency_level="Strong",
                     limit=16384, timeout=60)
    return sorted(r["pk"] for r in res)


def load(coll, vec="vec", index=None):
    if not coll.has_index():
        coll.create_index(vec, index or {"index_type": "FLAT", "metric_type": "L2", "params": {}}, timeout=120)
    coll.load(timeout=300)


def verify(srv, task_id, **data):
    """One `verify` request; a run longer than the wait is followed through `get`."""
    reply = srv.post("verify", {"task_id": task_id, "wait_s": 25, **data}, timeout=40)
    assert reply["code"] == 200, reply
    report = reply["data"]["verify"]
    if report["state"] == "running":
        report = wait_until(lambda: (lambda v: v if v["state"] != "running" else None)(
            srv.post("get", {"task_id": task_id})["data"]["task"]["verify"]), 300, interval=1,
            what="the verify run to finish")
    assert report["state"] == "done", report
    return report


def verify_followed(srv, task_id, report):
    """Follows a run through `get` until it is done."""
    if report["state"] == "running":
        report = wait_until(lambda: (lambda v: v if v["state"] != "running" else None)(
            srv.post("get", {"task_id": task_id})["data"]["task"]["verify"]), 300, interval=1,
            what="the verify run to finish")
    assert report["state"] == "done", report
    return report


def by_name(report):
    return {c["name"]: c for c in report["collections"]}


def cli(srv, task_id, *args):
    r = subprocess.run([str(BINARY), "verify", "--config", str(srv.config_path), "--task", task_id, *args],
                       capture_output=True, text=True, timeout=300)
    return r.returncode, (json.loads(r.stdout) if r.stdout.strip() else None), r.stderr


@pytest.fixture(scope="module")
def srv(tmp_path_factory, bed_env, source, target):
    s = CdcServer(tmp_path_factory.mktemp("verify"), bed_env=bed_env).start()
    yield s
    for t in s.post("list")["data"]["tasks"]:
        s.post("delete", {"task_id": t["task_id"]})
    s.stop()


@pytest.fixture(scope="module")
def names(source, target):
    n = {"a": unique_name("va"), "b": unique_name("vb"), "c": unique_name("vc")}
    yield n
    for alias in ("source", "target"):
        for name in n.values():
            if utility.has_collection(name, using=alias):
                Collection(name, using=alias).drop()


def test_verify_while_streaming_then_exact_differences(srv, bed_env, names, source, target):
    na, nb, nc = names["a"], names["b"], names["c"]
    reply = srv.post("create", {"milvus_connect_param": {"uri": bed_env["TARGET_MILVUS_URI"], "connect_timeout": 10},
                                "collection_infos": [{"name": na}, {"name": nb}, {"name": nc}]})
    assert reply["code"] == 200, reply
    task_id = reply["data"]["task_id"]
    wait_until(lambda: "replicating" in srv.post("get", {"task_id": task_id})["data"]["task"].get("reason", ""),
               60, what="the task to replicate")

    # Created after the task started: everything streams.
    a = Collection(na, schema_a(), using="source", shards_num=2)
    for p in PARTS[1:]:
        a.create_partition(p)
    b = Collection(nb, schema_b(), using="source", shards_num=2, num_partitions=4)
    c = Collection(nc, schema_c(), using="source", shards_num=1)
    load(a)
    load(b)
    load(c, "bvec", {"index_type": "BIN_FLAT", "metric_type": "HAMMING", "params": {}})
    rnd = random.Random(1)
    a_parts, b_tenants = {}, {}
    for i, p in enumerate(PARTS):
        keys = list(range(i * 1000, i * 1000 + 1000))
        a.insert([row_a(k, "init", rnd) for k in keys], partition_name=p)
        a_parts.update({k: p for k in keys})
    keys = ["k%05d" % i for i in range(3000)]
    b_tenants.update({k: rnd.randrange(10) for k in keys})
    b.insert([row_b(k, b_tenants[k], "init", rnd) for k in keys])
    c.insert([{"pk": k, "bvec": bytes([k % 256, 255 - k % 256]), "n": k - 100} for k in range(200)])

    targets = {}
    for name in (na, nb, nc):
        wait_until(lambda: utility.has_collection(name, using="target"), TIMEOUT, what=f"{name} on TARGET")
        targets[name] = Collection(name, using="target")
    ta, tb, tc = targets[na], targets[nb], targets[nc]
    wait_until(lambda: ta.has_index() and tb.has_index() and tc.has_index(), TIMEOUT, what="the indexes on TARGET")
    for t in (ta, tb, tc):
        t.load(timeout=300)
    wait_until(lambda: len(keys_of(ta)) == 3000 and len(keys_of(tb, True)) == 3000 and len(keys_of(tc)) == 200,
               TIMEOUT, interval=1, what="the first rows on TARGET")

    # Equal while a writer keeps changing A and B.
    writer = Writer(a, b, a_parts, b_tenants).start()
    try:
        wait_until(lambda: writer.cycles >= 3, 60, what="the writer to get going")
        for level in ("keys", "rows"):
            report = verify(srv, task_id, level=level)
            assert report["equal"] is True, json.dumps(report, indent=1)
            got = by_name(report)
            assert set(got) == {na, nb, nc}
            for cr in got.values():
                assert cr["missing"] == cr["extra"] == cr["different"] == 0, cr
                assert cr["duplicates"] == {"source": 0, "target": 0}, cr
                assert cr["target_name"] == cr["name"] and cr["level"] == level
            assert got[na]["partitions"] == 3 and "partitions" not in got[nb], got
            # Pages are read while the writer inserts into pages already read and deletes from pages
            # still ahead (4 keys a cycle), so the count read is near the 3000+ rows, not above it.
            assert got[na]["source_rows"] >= 2900 and got[nc]["source_rows"] == 200
        assert writer.cycles > 3
    finally:
        writer.stop()

    # Caught up: TARGET holds SOURCE's keys.
    wait_until(lambda: keys_of(ta) == keys_of(a) and keys_of(tb, True) == keys_of(b, True), TIMEOUT, interval=1,
               what="TARGET to catch up after the writer stopped")

    # Differences made directly on TARGET.
    rnd = random.Random(3)
    by_part = {p: sorted(k for k, q in a_parts.items() if q == p) for p in PARTS}
    gone_a = [by_part["_default"][5], by_part["p1"][10], by_part["p2"][-1]]
    changed_title, changed_dyn = by_part["p1"][20], by_part["p2"][30]
    ta.delete(expr(gone_a))
    row = a.query("pk == %d" % changed_title, output_fields=["*"], consistency_level="Strong")[0]
    ta.upsert([dict(row, title="tampered")], partition_name="p1")
    row = a.query("pk == %d" % changed_dyn, output_fields=["*"], consistency_level="Strong")[0]
    ta.upsert([dict(row, color="green")], partition_name="p2")
    extra_a = 10_000_000
    ta.insert([row_a(extra_a, "extra", rnd)], partition_name="p1")
    bkeys = sorted(b_tenants)
    gone_b, changed_b, extra_b = bkeys[3], bkeys[100], "zz-extra"
    tb.delete(expr([gone_b]))
    row = b.query(expr([changed_b]), output_fields=["*"], consistency_level="Strong")[0]
    tb.upsert([dict(row, score=-1.0)])
    tb.insert([row_b(extra_b, 1, "extra", rnd)])
    for t in (ta, tb):
        t.query("pk in [1]" if t is ta else 'pk in ["x"]', output_fields=["count(*)"], consistency_level="Strong")

    rows_report = verify(srv, task_id, level="rows")
    assert rows_report["equal"] is False
    got = by_name(rows_report)
    ra, rb, rc = got[na], got[nb], got[nc]
    assert (ra["missing"], ra["extra"], ra["different"], ra["in_flux"]) == (3, 1, 2, 0), ra
    assert ra["samples"] == {"missing": sorted(gone_a), "extra": [extra_a],
                             "different": sorted([changed_title, changed_dyn])}, ra
    assert ra["sample_keys"] == sorted(gone_a + [extra_a, changed_title, changed_dyn]), ra
    assert ra["different_fields"] == {"title": 1, "$meta": 1}, ra
    assert (rb["missing"], rb["extra"], rb["different"]) == (1, 1, 1), rb
    assert rb["samples"] == {"missing": [gone_b], "extra": [extra_b], "different": [changed_b]}, rb
    assert rc["equal"] is True and rc["source_rows"] == 200, rc

    keys_report = verify(srv, task_id, level="keys", collections=[{"db": "default", "name": na}, {"name": nb}])
    got = by_name(keys_report)
    assert set(got) == {na, nb}
    assert (got[na]["missing"], got[na]["extra"], got[na]["different"]) == (3, 1, 0), got[na]
    assert (got[nb]["missing"], got[nb]["extra"], got[nb]["different"]) == (1, 1, 0), got[nb]

    count_report = verify(srv, task_id, level="count", collections=[{"name": na}])
    ca = count_report["collections"][0]
    assert ca["equal"] is False and ca["missing"] == 2 and ca["source_rows"] - ca["target_rows"] == 2, ca

    # get shows the last run; its metrics are exported.
    assert srv.post("get", {"task_id": task_id})["data"]["task"]["verify"]["level"] == "count"
    metrics = srv.metrics()
    assert 'milvus_cdc_verify_rows_compared_total{task_id="%s"}' % task_id in metrics
    assert 'milvus_cdc_verify_differences{task_id="%s",kind="missing"} 2' % task_id in metrics

    # The offline form gives the same verdict (the server keeps running: SQLite in WAL mode).
    code, out, err = cli(srv, task_id, "--level", "rows")
    assert code == 1, (code, err)
    got = by_name(out)
    assert (got[na]["missing"], got[na]["extra"], got[na]["different"]) == (3, 1, 2), got[na]
    assert got[na]["samples"] == ra["samples"]
    assert (got[nb]["missing"], got[nb]["extra"], got[nb]["different"]) == (1, 1, 1), got[nb]
    assert "token" not in json.dumps(out).lower()
    code, out, err = cli(srv, task_id, "--collection", "default." + nc, "--level", "rows")
    assert code == 0 and out["equal"] is True, (code, out, err)
    code, out, err = cli(srv, task_id, "--collection", nb)
    assert code == 1 and out["collections"][0]["missing"] == 1, (code, out, err)
    code, out, err = cli(srv, "no-such-task")
    assert code == 2 and "not found the task, task_id: no-such-task" in err, (code, err)
    code, out, err = cli(srv, task_id, "--level", "deep")
    assert code == 2 and "level must be one of count, keys, rows" in err, (code, err)

    # Refusals name the problem.
    def refused(data):
        r = srv.post("verify", {"task_id": task_id, **data})
        assert r["code"] == 400, r
        return r["message"]
    assert "repair needs the keys or rows level" in refused({"repair": True, "level": "count"})
    assert "is not in the scope of the task" in refused({"collections": [{"name": "other"}]})
    assert "level must be one of count, keys, rows" in refused({"level": "all"})
    assert "'wait_s' expected type 'number'" in refused({"wait_s": "soon"})
    assert srv.post("pause", {"task_id": task_id})["code"] == 200
    assert "resume it, or run `milvus-cdc verify` offline" in refused({})
    assert srv.post("get", {"task_id": task_id})["data"]["task"]["verify"]["level"] == "count", "kept past a pause"
    code, out, err = cli(srv, task_id, "--collection", na, "--level", "keys")
    assert code == 1 and out["collections"][0]["missing"] == 3, (code, out, err)
    assert any("paused" in w for w in out["collections"][0]["warnings"]), out

    # Repair: the differing keys are copied again (missing, different) or deleted (extra), then
    # verified again; TARGET equals SOURCE row for row.
    assert srv.post("resume", {"task_id": task_id})["code"] == 200
    wait_until(lambda: srv.post("get", {"task_id": task_id})["data"]["task"]["state"] == "Running", TIMEOUT,
               what="the task running again")
    repaired = wait_until(lambda: (lambda r: r if r["code"] == 200 else None)(
        srv.post("verify", {"task_id": task_id, "level": "rows", "repair": True, "wait_s": 0})), TIMEOUT,
        what="verify to accept the repair (the task starts its pipeline)")
    report = verify_followed(srv, task_id, repaired["data"]["verify"])
    got = by_name(report)
    assert got[na]["repair"]["copy_keys"] == 5 and got[na]["repair"]["delete_keys"] == 1, got[na]
    assert got[nb]["repair"]["copy_keys"] == 2 and got[nb]["repair"]["delete_keys"] == 1, got[nb]
    assert report["equal"] is True, report
    assert verify(srv, task_id, level="rows")["equal"] is True
    for s_side, t_side, varchar in ((a, ta, False), (b, tb, True)):
        assert keys_of(t_side, varchar) == keys_of(s_side, varchar)
    for k in (changed_title, changed_dyn):
        want = a.query("pk == %d" % k, output_fields=["*"], consistency_level="Strong")
        assert ta.query("pk == %d" % k, output_fields=["*"], consistency_level="Strong") == want
    assert srv.post("delete", {"task_id": task_id})["code"] == 200
