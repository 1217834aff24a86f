"""Migrating a live Milvus 2.3 onto a current Milvus: the bed's SOURCE (2.3.5) replicated into a
milvus-lite 3.2.2 server, which speaks today's Milvus gRPC protocol (`scripts/testbed.sh up
--lite`; `scripts/test-all.sh` starts it). Rows are compared field by field (vectors bit for bit,
JSON and dynamic fields as values), and so is every piece of metadata lite keeps: fields and their
types, the primary and partition keys, the dynamic field, partitions, properties, indexes, load
state, aliases and databases; a filtered query on the partition key and a FLAT search answer the
same. What lite does not keep (shard count, consistency level, descriptions, its own
partition-key partitions) is asserted as lite reports it, and so is its partial-update Upsert of
dynamic keys; the task also survives a pause and resume. README ("Migrating to a current Milvus")
and docs/milvus-notes.md ("milvus-lite 3.2.2 as a target") say the same.

Without milvus-lite running (`LITE_MILVUS_URI` missing) the tests are skipped.
"""
import json
import random

import pytest
from pymilvus import Collection, CollectionSchema, DataType, FieldSchema, db, utility
from pymilvus.grpc_gen import milvus_pb2

from cdc_server import CdcServer
from helpers import unique_name, wait_until

pytestmark = pytest.mark.bed

TIMEOUT = 240          # seconds for the target to show what SOURCE did
PAGE = 5000            # keys per query page (Milvus 2.3 answers at most 16 384 rows a query)


# ------------------------------------------------------------------ reading both sides

def use(alias, name):
    db.using_database(name, using=alias)


def key_pages(pk_type, n_keys):
    """Filters that cover keys 0..n_keys-1 of `keys()` page by page (both sides accept them)."""
    for lo in range(0, n_keys, PAGE):
        hi = lo + PAGE
        if pk_type == "int64":
            yield "pk >= %d and pk < %d" % (lo, hi)
        else:
            yield 'pk >= "%s" and pk < "%s"' % (vkey(lo), vkey(hi))


def vkey(i):
    return "k%08d" % i


def all_rows(alias, name, pk_type, n_keys):
    """Every row by primary key, every field (`*`: schema fields and dynamic keys)."""
    coll = Collection(name, using=alias)
    out = {}
    for expr in key_pages(pk_type, n_keys):
        for r in coll.query(expr, output_fields=["*"], consistency_level="Strong", timeout=120, limit=PAGE + 1):
            assert r["pk"] not in out, "%s: key %r returned twice" % (name, r["pk"])
            out[r["pk"]] = r
    return out


def first_row_difference(src, dst):
    """None when equal, else a short description of the first difference (for the poll's message)."""
    if src.keys() != dst.keys():
        missing = sorted(set(src) - set(dst), key=str)[:5]
        extra = sorted(set(dst) - set(src), key=str)[:5]
        return "%d rows on SOURCE, %d on lite; missing %s, extra %s" % (len(src), len(dst), missing, extra)
    for k in sorted(src, key=str):
        if src[k] != dst[k]:
            diff = {f: (src[k].get(f), dst[k].get(f)) for f in set(src[k]) | set(dst[k])
                    if src[k].get(f) != dst[k].get(f)}
            return "key %r differs: %s" % (k, str(diff)[:400])
    return None


def describe(alias, dbname, name):
    """The raw DescribeCollectionResponse (pymilvus 2.3.7's dict drops some fields)."""
    from pymilvus import connections
    h = connections._fetch_handler(alias)
    r = h._stub.DescribeCollection(milvus_pb2.DescribeCollectionRequest(db_name=dbname, collection_name=name),
                                   timeout=30)
    assert r.status.error_code == 0 and r.status.code == 0, r.status
    return r


def fields_kept(resp, array_max_length=True):
    """What lite keeps of each field. lite does not report an ARRAY<VARCHAR>'s element max_length
    (array_max_length=False leaves it out on both sides)."""
    out = []
    for f in resp.schema.fields:
        if f.name in ("RowID", "Timestamp") or f.is_dynamic:
            continue
        params = {p.key: p.value for p in f.type_params if p.key in ("dim", "max_length", "max_capacity")}
        if f.data_type == DataType.ARRAY and not array_max_length:
            params.pop("max_length", None)
        out.append((f.name, f.data_type, f.element_type, f.is_primary_key, f.autoID, f.is_partition_key,
                    tuple(sorted(params.items()))))
    return out, resp.schema.enable_dynamic_field


def indexes(alias, name):
    out = []
    for i in Collection(name, using=alias).indexes:
        p = dict(i.params)
        extra = p.get("params") or {}
        if isinstance(extra, str):
            extra = json.loads(extra)
        out.append((i.field_name, p.get("index_type"), p.get("metric_type"),
                    tuple(sorted((k, str(v)) for k, v in extra.items()))))
    return sorted(out)


def lite_aliases(dbname):
    """alias -> collection on lite (its DescribeCollection lists no aliases; ListAliases does)."""
    from pymilvus import connections
    h = connections._fetch_handler("lite")
    r = h._stub.ListAliases(milvus_pb2.ListAliasesRequest(db_name=dbname), timeout=30)
    assert r.status.code == 0, r.status
    out = {}
    for a in r.aliases:
        d = h._stub.DescribeAlias(milvus_pb2.DescribeAliasRequest(db_name=dbname, alias=a), timeout=30)
        out[a] = d.collection
    return out


def load_state(alias, name):
    return str(utility.load_state(name, using=alias))


# ------------------------------------------------------------------ SOURCE schemas and rows

DIM = 8


def dyn_schema():
    return CollectionSchema([
        FieldSchema("pk", DataType.INT64, is_primary=True),
        FieldSchema("vec", DataType.FLOAT_VECTOR, dim=DIM),
        FieldSchema("title", DataType.VARCHAR, max_length=64),
        FieldSchema("meta", DataType.JSON),
    ], description="migration: dynamic field", enable_dynamic_field=True)


def dyn_rows(keys, rnd, tag):
    # Every version of a row has the same dynamic keys: lite's Upsert is a partial update that keeps
    # the old row's dynamic keys the new one lacks, where Milvus replaces the row
    # (docs/milvus-notes.md, "milvus-lite 3.2.2 as a target").
    return [{"pk": k, "vec": [rnd.random() for _ in range(DIM)], "title": "%s-%d" % (tag, k),
             "meta": {"k": k, "tag": tag, "list": [k % 3, str(k)]}, "colour": ["red", "green"][k % 2],
             "dyn": "%s-%d" % (tag, k * 10)} for k in keys]


def vc_schema():
    return CollectionSchema([
        FieldSchema("pk", DataType.VARCHAR, is_primary=True, max_length=16),
        FieldSchema("vec", DataType.FLOAT_VECTOR, dim=DIM),
        FieldSchema("n", DataType.INT64),
    ])


def vc_rows(keys, rnd, sign=1):
    return [{"pk": vkey(k), "vec": [rnd.random() for _ in range(DIM)], "n": sign * k} for k in keys]


def pkey_schema():
    return CollectionSchema([
        FieldSchema("pk", DataType.INT64, is_primary=True),
        FieldSchema("tenant", DataType.VARCHAR, max_length=16, is_partition_key=True),
        FieldSchema("vec", DataType.FLOAT_VECTOR, dim=DIM),
    ])


def pkey_rows(keys, rnd, shift=0):
    return [{"pk": k, "tenant": "t%d" % ((k + shift) % 7), "vec": [rnd.random() for _ in range(DIM)]} for k in keys]


def types_schema():
    return CollectionSchema([
        FieldSchema("pk", DataType.INT64, is_primary=True),
        FieldSchema("b", DataType.BOOL), FieldSchema("i8", DataType.INT8), FieldSchema("i16", DataType.INT16),
        FieldSchema("i32", DataType.INT32), FieldSchema("f", DataType.FLOAT), FieldSchema("d", DataType.DOUBLE),
        FieldSchema("s", DataType.VARCHAR, max_length=40), FieldSchema("j", DataType.JSON),
        FieldSchema("ai", DataType.ARRAY, element_type=DataType.INT64, max_capacity=5),
        FieldSchema("af", DataType.ARRAY, element_type=DataType.DOUBLE, max_capacity=3),
        FieldSchema("as_", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=4, max_length=10),
        FieldSchema("vec", DataType.FLOAT_VECTOR, dim=16),
    ])


def types_rows(keys, rnd, tag="v1"):
    return [{"pk": k, "b": k % 2 == 0, "i8": k % 200 - 100, "i16": -k * 7, "i32": k * 1000 + 1, "f": k / 3.0,
             "d": k / 7.0 + 1e-12, "s": "%s-%d" % (tag, k), "j": {"a": [k, str(k)], "nested": {"x": k / 2}},
             "ai": list(range(k % 5)), "af": [k / 11.0] * (k % 3), "as_": ["e%d" % i for i in range(k % 4)],
             "vec": [rnd.random() for _ in range(16)]} for k in keys]


# ------------------------------------------------------------------ fixtures

@pytest.fixture(scope="module")
def lite_cdc(tmp_path_factory, bed_env, lite, source):
    """A milvus-cdc server (the real binary) for this module's tasks into lite."""
    srv = CdcServer(tmp_path_factory.mktemp("migration"), bed_env=bed_env).start()
    srv.tasks = []
    yield srv
    for t in list(srv.tasks):
        delete_task(srv, t)
    srv.stop()


def create_task(srv, bed_env, scope, **extra):
    reply = srv.post("create", {"milvus_connect_param": {"uri": bed_env["LITE_MILVUS_URI"], "connect_timeout": 10},
                                "db_collections": scope, **extra})
    assert reply["code"] == 200, reply
    task_id = reply["data"]["task_id"]
    srv.tasks.append(task_id)
    return task_id


def delete_task(srv, task_id):
    if task_id in srv.tasks:
        srv.post("delete", {"task_id": task_id})
        srv.tasks.remove(task_id)


def task_of(srv, task_id):
    return srv.post("get", {"task_id": task_id})["data"]["task"]


def assert_running(srv, task_id):
    """Fails the test at once (also inside a wait_until poll) when the task is not running."""
    t = task_of(srv, task_id)
    if t["state"] != "Running":
        pytest.fail("the task stopped: %s" % json.dumps(
            {k: t.get(k) for k in ("state", "reason", "failed_change", "last_error")}))


class Cleanup:
    """Drops what a test made, on SOURCE and on lite (collections, aliases, databases)."""

    def __init__(self):
        self.items = []      # (db, collection, [aliases])
        self.dbs = []

    def run(self):
        for alias in ("source", "lite"):
            for dbname, name, aliases in self.items:
                try:
                    use(alias, dbname)
                    for a in aliases:
                        try:
                            utility.drop_alias(a, using=alias)
                        except Exception:  # noqa: BLE001 - may never have been made
                            pass
                    if utility.has_collection(name, using=alias):
                        utility.drop_collection(name, using=alias)
                except Exception:  # noqa: BLE001 - best effort; the database may be gone
                    pass
            use(alias, "default")
            for d in self.dbs:
                try:
                    if d in db.list_database(using=alias):
                        db.drop_database(d, using=alias)
                except Exception:  # noqa: BLE001
                    pass


# ------------------------------------------------------------------ streaming

def test_streaming_into_lite(lite_cdc, bed_env):
    """A task streams collections created on SOURCE after it started into lite: INT64 and VARCHAR
    keys, a dynamic field, partitions, a partition-key collection, every scalar and ARRAY type,
    2-4 shards, an alias, a TTL property, indexes, load and release, a second database, inserts,
    deletes and upserts. lite ends equal to SOURCE row by row, with the metadata it keeps."""
    srv, rnd, clean = lite_cdc, random.Random(14), Cleanup()
    n = {k: unique_name("mig_" + k) for k in ("dyn", "vc", "pkey", "types")}
    db2, orders, alias, alias2 = unique_name("migdb"), "orders", unique_name("mig_alias"), unique_name("mig_alias")
    clean.items = [("default", n["dyn"], [alias]), ("default", n["vc"], []), ("default", n["pkey"], []),
                   ("default", n["types"], []), (db2, orders, [alias2])]
    clean.dbs = [db2]
    task = create_task(srv, bed_env, {"default": [{"name": v} for v in n.values()], db2: [{"name": "*"}]})
    try:
        wait_until(lambda: "replicating" in task_of(srv, task).get("reason", ""), 60, "the task to start")
        use("source", "default")

        dyn = Collection(n["dyn"], dyn_schema(), using="source", shards_num=2, consistency_level="Bounded")
        dyn.create_partition("p1")
        dyn.create_partition("p2")
        dyn.set_properties({"collection.ttl.seconds": 86400})
        dyn.create_partition("p3")  # dropped below, with its rows
        vc = Collection(n["vc"], vc_schema(), using="source", shards_num=4)
        pkey = Collection(n["pkey"], pkey_schema(), using="source", shards_num=2, num_partitions=8)
        types = Collection(n["types"], types_schema(), using="source", shards_num=1)
        db.create_database(db2, using="source")
        use("source", db2)
        ords = Collection(orders, dyn_schema(), using="source", shards_num=3)
        utility.create_alias(orders, alias2, using="source")
        use("source", "default")
        utility.create_alias(n["dyn"], alias, using="source")

        # rows: inserts in batches, then deletes and upserts over the same key ranges
        sizes = {"dyn": 3000, "vc": 2000, "pkey": 2000, "types": 400, "orders": 1500}
        for lo in range(0, sizes["dyn"], 500):
            part = ["_default", "p1", "p2"][lo // 500 % 3]
            dyn.insert(dyn_rows(range(lo, lo + 500), rnd, "v1"), partition_name=part)
        dyn.insert(dyn_rows(range(3300, 3400), rnd, "p3"), partition_name="p3")
        dyn.drop_partition("p3")  # not loaded: 2.3.5 drops a loaded partition only after a release
        for lo in range(0, sizes["vc"], 500):
            vc.insert(vc_rows(range(lo, lo + 500), rnd))
        for lo in range(0, sizes["pkey"], 500):
            pkey.insert(pkey_rows(range(lo, lo + 500), rnd))
        types.insert(types_rows(range(sizes["types"]), rnd))
        use("source", db2)  # a Collection object sends the connection's current database
        ords.insert(dyn_rows(range(sizes["orders"]), rnd, "o1"))
        ords.delete("pk in [%s]" % ",".join(map(str, range(0, 1500, 4))))
        ords.upsert(dyn_rows(range(1, 1500, 8), rnd, "o2"))
        ords.create_index("vec", {"index_type": "IVF_PQ", "metric_type": "L2", "params": {"nlist": 8, "m": 4}})
        ords.load(timeout=300)
        use("source", "default")

        dyn.delete("pk in [%s]" % ",".join(map(str, range(0, 3000, 11))))
        dyn.upsert(dyn_rows(range(5, 500, 7), rnd, "v2"))                         # in _default
        dyn.upsert(dyn_rows(range(500, 1000, 13), rnd, "v2"), partition_name="p1")
        vc.delete("pk in [%s]" % ",".join('"%s"' % vkey(k) for k in range(0, 2000, 9)))
        vc.upsert(vc_rows(range(0, 2000, 17), rnd, sign=-1))                      # half of them deleted before
        pkey.delete("pk in [%s]" % ",".join(map(str, range(3, 2000, 10))))
        pkey.upsert(pkey_rows(range(0, 2000, 6), rnd, shift=3))                   # the partition key changes
        types.upsert(types_rows(range(0, 400, 5), rnd, tag="v2"))
        types.delete("pk in [1, 2, 3]")

        # indexes and load on SOURCE (queries need a loaded collection); a release comes last
        dyn.create_index("vec", {"index_type": "IVF_FLAT", "metric_type": "L2", "params": {"nlist": 16}})
        vc.create_index("vec", {"index_type": "HNSW", "metric_type": "IP", "params": {"M": 8, "efConstruction": 64}})
        pkey.create_index("vec", {"index_type": "FLAT", "metric_type": "COSINE", "params": {}})
        types.create_index("vec", {"index_type": "IVF_SQ8", "metric_type": "L2", "params": {"nlist": 8}})
        for c in (dyn, vc, pkey, types):
            c.load(timeout=300)

        # rows, field by field, on every collection
        plan = [("default", n["dyn"], "int64", 3400), ("default", n["vc"], "varchar", sizes["vc"]),
                ("default", n["pkey"], "int64", sizes["pkey"]), ("default", n["types"], "int64", sizes["types"]),
                (db2, orders, "int64", sizes["orders"])]
        src_rows = {}
        for dbname, name, pk_type, keys in plan:
            use("source", dbname)
            src = src_rows[name] = all_rows("source", name, pk_type, keys)
            assert len(src) > keys // 2, (name, len(src))

            def same():
                assert_running(srv, task)
                use("lite", dbname)
                if not utility.has_collection(name, using="lite"):
                    return False
                return first_row_difference(src, all_rows("lite", name, pk_type, keys)) is None
            try:
                wait_until(same, TIMEOUT, "lite to hold %s.%s as SOURCE does" % (dbname, name))
            except AssertionError:
                use("lite", dbname)
                pytest.fail("%s.%s: %s" % (dbname, name, first_row_difference(src, all_rows("lite", name, pk_type, keys))))

        # the metadata lite keeps
        for dbname, name, pk_type, _ in plan:
            use("source", dbname)
            use("lite", dbname)
            s, t = describe("source", dbname, name), describe("lite", dbname, name)
            keep_len = "as_" not in [f.name for f in s.schema.fields]
            assert fields_kept(t, keep_len) == fields_kept(s, keep_len), name
            assert {p.key: p.value for p in t.properties} == {p.key: p.value for p in s.properties}, name
            assert indexes("lite", name) == indexes("source", name), name
            wait_until(lambda: load_state("lite", name) == load_state("source", name) == "Loaded", TIMEOUT,
                       "%s loaded on lite" % name)
        use("source", "default")
        use("lite", "default")
        assert sorted(p.name for p in Collection(n["dyn"], using="lite").partitions) == ["_default", "p1", "p2"]
        assert {p.key: p.value for p in describe("lite", "default", n["dyn"]).properties} == \
            {"collection.ttl.seconds": "86400"}
        assert db2 in db.list_database(using="lite")
        assert lite_aliases("default").get(alias) == n["dyn"]
        assert lite_aliases(db2).get(alias2) == orders
        # lite hashes a partition key into partitions of its own; a query filtered on the key finds
        # exactly the rows holding it. (SOURCE's own answer can miss upserted rows: Milvus 2.3.5
        # hashes an upserted row's key differently, docs/milvus-notes.md; lite has no such quirk.)
        for tenant in ("t0", "t3", "t6"):
            expr = 'tenant == "%s"' % tenant
            want = sorted(k for k, r in src_rows[n["pkey"]].items() if r["tenant"] == tenant)
            got = sorted(r["pk"] for r in Collection(n["pkey"], using="lite").query(expr, output_fields=["pk"], limit=16384))
            assert got == want, (tenant, len(got), len(want))

        # what lite does not keep (README, "Migrating to a current Milvus"): every collection has
        # one shard and reports Strong consistency, descriptions are empty, and a partition-key
        # collection gets lite's own 16 partitions instead of SOURCE's 8
        for dbname, name, _, _ in plan:
            s, t = describe("source", dbname, name), describe("lite", dbname, name)
            assert s.shards_num > 1 or name == n["types"], name
            assert (t.shards_num, t.consistency_level, t.schema.description) == (1, 0, ""), name
            assert all(f.description == "" for f in t.schema.fields), name
        assert describe("source", "default", n["dyn"]).consistency_level == 2  # Bounded
        use("lite", "default")
        lite_parts = sorted(p.name for p in Collection(n["pkey"], using="lite").partitions)
        assert lite_parts == sorted(["_default"] + ["_pk_%d" % i for i in range(16)]), lite_parts
        assert len(Collection(n["pkey"], using="source").partitions) == 8

        # a vector search answers the same on both sides (FLAT: exact, so the same keys in order)
        queries = [[rnd.random() for _ in range(DIM)] for _ in range(3)]
        search = {"metric_type": "COSINE", "params": {}}
        hits = {a: [[h.id for h in hs] for hs in Collection(n["pkey"], using=a).search(
                    queries, "vec", search, limit=10, consistency_level="Strong")] for a in ("source", "lite")}
        assert hits["lite"] == hits["source"]

        # a release on SOURCE releases the collection on lite
        vc.release()
        wait_until(lambda: load_state("lite", n["vc"]) == "NotLoad", TIMEOUT, "the release on lite")
        assert_running(srv, task)

        # pause and resume (the task re-reads its collections, partitions included, at start),
        # then more changes arrive
        assert srv.post("pause", {"task_id": task})["code"] == 200
        dyn.insert(dyn_rows(range(3000, 3300), rnd, "v3"), partition_name="p2")
        dyn.delete("pk in [%s]" % ",".join(map(str, range(1, 3000, 29))))
        assert srv.post("resume", {"task_id": task})["code"] == 200
        src = all_rows("source", n["dyn"], "int64", 3400)

        def resumed():
            assert_running(srv, task)
            return first_row_difference(src, all_rows("lite", n["dyn"], "int64", 3400)) is None
        try:
            wait_until(resumed, TIMEOUT, "lite to hold %s after the resume" % n["dyn"])
        except AssertionError:
            pytest.fail("after the resume: %s" % first_row_difference(src, all_rows("lite", n["dyn"], "int64", 3400)))

        # documented difference: lite's Upsert keeps the dynamic keys of the old row that the new
        # version lacks (a partial update); Milvus replaces the whole row
        dyn.insert(dyn_rows([5000], rnd, "v1"))
        newer = dyn_rows([5000], rnd, "v2")[0]
        del newer["dyn"]
        dyn.upsert([newer])
        src_row = dyn.query("pk == 5000", output_fields=["*"], consistency_level="Strong")[0]
        assert "dyn" not in src_row and src_row["title"] == "v2-5000"

        def upserted():
            rows = Collection(n["dyn"], using="lite").query("pk == 5000", output_fields=["*"])
            return rows and rows[0]["title"] == "v2-5000" and rows[0]
        lite_row = wait_until(upserted, TIMEOUT, "the upsert on lite")
        assert lite_row == dict(src_row, dyn="v1-50000")
    finally:
        delete_task(srv, task)  # first: its drops on lite would race with ours
        use("source", "default")
        clean.run()


# ------------------------------------------------------------------ backfill, verify, repair

def test_backfill_verify_and_repair_into_lite(lite_cdc, bed_env):
    """Moving a live 2.3 cluster with data onto lite: rows written before the task (INT64 keys in
    three partitions with a dynamic field; VARCHAR keys) are copied by backfill while a writer
    inserts, deletes and upserts the same keys; lite ends equal to SOURCE row by row, `verify`
    says so, and after rows are removed and changed on lite, `verify` with `repair` puts them back."""
    import threading
    srv, rnd, clean = lite_cdc, random.Random(15), Cleanup()
    dbname = unique_name("migbf")
    clean.items = [(dbname, "dyn", []), (dbname, "vc", [])]
    clean.dbs = [dbname]
    db.create_database(dbname, using="source")
    use("source", dbname)
    dyn = Collection("dyn", dyn_schema(), using="source", shards_num=2)
    dyn.create_partition("p1")
    dyn.create_partition("p2")
    vc = Collection("vc", vc_schema(), using="source", shards_num=2)
    n_dyn, n_vc = 12_000, 8_000
    for lo in range(0, n_dyn, 2000):
        dyn.insert(dyn_rows(range(lo, lo + 2000), rnd, "old"), partition_name=["_default", "p1", "p2"][lo // 2000 % 3])
    for lo in range(0, n_vc, 2000):
        vc.insert(vc_rows(range(lo, lo + 2000), rnd))
    for c in (dyn, vc):
        c.create_index("vec", {"index_type": "FLAT", "metric_type": "L2", "params": {}})
        c.load(timeout=300)

    stop, wrote = threading.Event(), {"cycles": 0}

    def writer():  # keys below n stay below it, so the paged readers cover every row
        w = random.Random(16)
        while not stop.is_set():
            use("source", dbname)
            ks = w.sample(range(n_dyn), 40)
            dyn.delete("pk in [%s]" % ",".join(map(str, ks[:10])))
            for part in range(3):  # each key in its own partition (2.3.5 would keep it in two)
                mine = [k for k in ks[10:30] if k // 2000 % 3 == part]
                if mine:
                    dyn.upsert(dyn_rows(mine, w, "w%d" % wrote["cycles"]), partition_name=["_default", "p1", "p2"][part])
            vs = w.sample(range(n_vc), 20)
            vc.delete("pk in [%s]" % ",".join('"%s"' % vkey(k) for k in vs[:5]))
            vc.upsert(vc_rows(vs[5:], w, sign=-1))
            wrote["cycles"] += 1
            stop.wait(0.2)

    task = create_task(srv, bed_env, {dbname: [{"name": "*"}]}, backfill=True)
    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        def copied():
            assert_running(srv, task)
            b = task_of(srv, task).get("backfill_progress", [])
            assert not [x for x in b if x["state"] == "failed"], b
            return len(b) == 2 and all(x["state"] == "done" for x in b)
        wait_until(copied, TIMEOUT, "the backfill of both collections")
        stop.set()
        thread.join(timeout=60)
        assert wrote["cycles"] > 0
        use("source", dbname)
        use("lite", dbname)
        for name, pk_type, n in (("dyn", "int64", n_dyn), ("vc", "varchar", n_vc)):
            Collection(name, using="lite").load(timeout=300)
            src = all_rows("source", name, pk_type, n)
            wait_until(lambda: first_row_difference(src, all_rows("lite", name, pk_type, n)) is None, TIMEOUT,
                       "lite equal to SOURCE: %s" % name)

        def verify(**data):
            reply = srv.post("verify", {"task_id": task, "wait_s": 25, **data}, timeout=40)
            assert reply["code"] == 200, reply
            report = reply["data"]["verify"]
            if report["state"] == "running":
                report = wait_until(lambda: (lambda v: v if v["state"] != "running" else None)(
                    task_of(srv, task)["verify"]), TIMEOUT, "the verify run")
            assert report["state"] == "done", report
            return {c["name"]: c for c in report["collections"]}, report["equal"]
        _, equal = verify(level="rows")
        assert equal is True

        gone = [3, 2003, 4003]  # one per partition
        Collection("dyn", using="lite").delete("pk in [%s]" % ",".join(map(str, gone)))
        Collection("vc", using="lite").delete('pk in ["%s"]' % vkey(7))
        got, equal = verify(level="keys")
        assert equal is False
        assert got["dyn"]["missing"] == 3 and got["vc"]["missing"] == 1, got
        got, equal = verify(level="rows", repair=True)
        assert got["dyn"]["repair"]["copy_keys"] == 3 and got["vc"]["repair"]["copy_keys"] == 1, got
        assert equal is True, got
        use("lite", dbname)
        for name, pk_type, n in (("dyn", "int64", n_dyn), ("vc", "varchar", n_vc)):
            assert first_row_difference(all_rows("source", name, pk_type, n), all_rows("lite", name, pk_type, n)) is None
        assert_running(srv, task)
    finally:
        stop.set()
        delete_task(srv, task)
        clean.run()
