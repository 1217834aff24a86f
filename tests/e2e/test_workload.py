"""The operator's check after a real workload: a task created with the README's curl body
(`db_collections: {"*": [{"name": "*"}]}`), 100 000 rows inserted, deleted and upserted over
three collections in two databases on SOURCE, and TARGET identical row by row, with the same
indexes and load state."""
import pytest
from pymilvus import Collection, db, utility

from cdc_server import CdcServer, wait_until
from helpers import STANDBY, expected_write_mode, unique_name
import workload

pytestmark = pytest.mark.bed

TIMEOUT = 300
BATCH = 5000


def rows_in(coll, keys, fields=("pk", "vec", "title", "meta", "extra")):
    """Rows of `keys`, fetched in chunks, as {pk: row}."""
    out = {}
    for i in range(0, len(keys), BATCH):
        chunk = keys[i:i + BATCH]
        expr = "pk in [%s]" % ",".join(('"%s"' % k) if isinstance(k, str) else str(k) for k in chunk)
        for r in coll.query(expr, output_fields=list(fields), consistency_level="Strong", timeout=120):
            row = {k: r.get(k) for k in fields}
            row["vec"] = [round(float(x), 5) for x in row["vec"]]
            out[r["pk"]] = row
    return out


def count(coll, pk_type):
    expr = "pk >= 0" if pk_type == "int64" else 'pk != ""'
    return coll.query(expr, output_fields=["count(*)"], consistency_level="Strong", timeout=120)[0]["count(*)"]


def test_hundred_thousand_rows_over_three_collections_in_two_databases(tmp_path, bed_env, source, target):
    srv = CdcServer(tmp_path / "workload", bed_env=bed_env).start()
    dbname = unique_name("wl")
    specs = [("default", unique_name("wl_a"), "int64", 40000), ("default", unique_name("wl_b"), "varchar", 20000),
             (dbname, unique_name("wl_c"), "int64", 40000)]
    try:
        reply = srv.post("create", {"milvus_connect_param": {"uri": bed_env["TARGET_MILVUS_URI"], "connect_timeout": 10},
                                    "db_collections": {"*": [{"name": "*"}]}})
        assert reply["code"] == 200, reply
        task_id = reply["data"]["task_id"]
        db.create_database(dbname, using="source")
        keys = {}
        for dbn, name, pk_type, n in specs:
            workload.use_db("source", dbn)
            coll = workload.create_collection("source", name, pk_type=pk_type, shards=2)
            ks = list(range(n)) if pk_type == "int64" else [f"key-{i:06d}" for i in range(n)]
            for i in range(0, n, BATCH):
                coll.insert(workload.rows(ks[i:i + BATCH]))
            dels = ks[::9]
            for i in range(0, len(dels), BATCH):
                chunk = dels[i:i + BATCH]
                coll.delete("pk in [%s]" % ",".join(('"%s"' % k) if isinstance(k, str) else str(k) for k in chunk))
            ups = ks[1:2001]
            coll.upsert(workload.rows(ups, tag="v2"))
            coll.create_index("vec", {"index_type": "IVF_FLAT", "metric_type": "L2", "params": {"nlist": 32}},
                              timeout=120)
            coll.load(timeout=300)
            keys[(dbn, name)] = ks
        workload.use_db("source", "default")

        for dbn, name, pk_type, n in specs:
            workload.use_db("source", dbn)
            workload.use_db("target", dbn)
            src = Collection(name, using="source")
            wait_until(lambda: utility.has_collection(name, using="target"), TIMEOUT, what=f"{name} on TARGET")
            tgt = Collection(name, using="target")
            wait_until(lambda: str(utility.load_state(name, using="target")) == "Loaded", TIMEOUT,
                       what=f"{name} loaded on TARGET")
            expected_count = count(src, pk_type)
            wait_until(lambda: count(tgt, pk_type) == expected_count, TIMEOUT,
                       what=f"count(*) of {name} on TARGET = {expected_count}")
            assert rows_in(tgt, keys[(dbn, name)]) == rows_in(src, keys[(dbn, name)])
            assert tgt.index().params == src.index().params
            assert workload.field_summary(tgt) == workload.field_summary(src)
        task = srv.post("get", {"task_id": task_id})["data"]["task"]
        assert task["state"] == "Running", task
        if STANDBY:
            # on REPLICA rows go through ReplicateMessage, not the Insert/Delete calls counted below
            assert task.get("write_mode") == expected_write_mode(), task
            return
        metrics = srv.metrics()
        assert 'api_type="insert"' in metrics and 'api_type="delete"' in metrics
        # Our own time per pack, by stage: every pack that wrote rows was counted in each.
        for stage in ("queued", "intent", "apply"):
            counts = [float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                      if line.startswith("milvus_cdc_pack_latency_ms_count{")
                      and f'task_id="{task_id}"' in line and f'stage="{stage}"' in line]
            assert counts and counts[0] > 0, (stage, counts)
    finally:
        workload.use_db("source", "default")
        workload.use_db("target", "default")
        srv.stop()
        for dbn, name, _, _ in specs:
            for alias in ("source", "target"):
                workload.use_db(alias, dbn)
                if utility.has_collection(name, using=alias):
                    utility.drop_collection(name, using=alias)
                workload.use_db(alias, "default")
        for alias in ("source", "target"):
            if dbname in db.list_database(using=alias):
                db.drop_database(dbname, using=alias)
