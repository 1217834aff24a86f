"""Replication end to end: a task created through POST /cdc keeps TARGET equal to SOURCE.
Every test changes SOURCE with pymilvus and polls TARGET (bounded) until it matches what
an operator would compare: schema, count(*), every row by primary key, partitions,
indexes, load state, databases."""
import pytest
from pymilvus import Collection, Partition, db, utility

from cdc_server import CdcServer, wait_until
from helpers import STANDBY, expected_write_mode, unique_name
import workload

pytestmark = pytest.mark.bed

TIMEOUT = 120


@pytest.fixture(scope="module")
def cdc(tmp_path_factory, bed_env, source, target):
    """One server and one task that copies every database to TARGET."""
    srv = CdcServer(tmp_path_factory.mktemp("repl"), bed_env=bed_env).start()
    reply = srv.post("create", {"milvus_connect_param": {"uri": bed_env["TARGET_MILVUS_URI"], "connect_timeout": 10},
                                "db_collections": {"*": [{"name": "*"}]}})
    assert reply["code"] == 200, reply
    srv.task_id = reply["data"]["task_id"]
    wait_until(lambda: "replicating" in task(srv).get("reason", ""), 60, what="the task to start replicating")
    if STANDBY:  # `auto` must have picked the standby's mode (the task-level `write_mode` in `get`)
        assert task(srv).get("write_mode") == expected_write_mode(), task(srv)
    yield srv
    srv.post("delete", {"task_id": srv.task_id})
    srv.stop()


def task(srv):
    return srv.post("get", {"task_id": srv.task_id})["data"]["task"]


def target_has(name, using="target"):
    return utility.has_collection(name, using=using)


def wait_rows_equal(src, tgt, pk_type="int64"):
    """Polls until TARGET's rows equal SOURCE's, by primary key, field by field."""
    expected = workload.all_rows(src, pk_type)

    def same():
        got = workload.all_rows(tgt, pk_type)
        return got == expected or (len(got), len(expected))
    wait_until(lambda: same() is True, TIMEOUT, what=f"rows of {src.name} equal on TARGET")
    return expected


def loaded_target(name):
    wait_until(lambda: target_has(name), TIMEOUT, what=f"{name} on TARGET")
    tgt = Collection(name, using="target")
    workload.ensure_index_and_load(tgt)
    return tgt


def test_collection_schema_and_rows(cdc):
    name = unique_name("rows")
    src = workload.create_collection("source", name, shards=2)
    src.insert(workload.rows(list(range(2000))))
    src.delete("pk in [%s]" % ",".join(str(i) for i in range(0, 2000, 20)))  # 100 deletes
    src.upsert(workload.rows(list(range(1, 51)), tag="v2"))                # 50 upserts
    workload.ensure_index_and_load(src)

    tgt = loaded_target(name)
    assert workload.field_summary(tgt) == workload.field_summary(src)
    rows = wait_rows_equal(src, tgt)
    assert len(rows) == 2000 - 100 + 2  # the upsert brought back pks 20 and 40
    assert rows[1]["title"] == "v2-1" and rows[1]["extra"] == "dyn-v2"  # the upserted version
    assert 0 not in rows and 60 not in rows and rows[20]["title"] == "v2-20"
    info_src, info_tgt = src.describe(), tgt.describe()
    assert info_tgt["num_shards"] == info_src["num_shards"] == 2
    assert info_tgt["consistency_level"] == info_src["consistency_level"]
    src.drop()


def test_varchar_keys_partitions_and_other_database(cdc):
    dbname, name = unique_name("repdb"), unique_name("vc")
    db.create_database(dbname, using="source")
    try:
        workload.use_db("source", dbname)
        src = workload.create_collection("source", name, pk_type="varchar", shards=1)
        src.create_partition("p1")
        src.insert(workload.rows([f"a{i}" for i in range(100)]))
        Partition(src, "p1").insert(workload.rows([f"b{i}" for i in range(60)]))
        src.delete('pk in ["a1", "a2", "b3"]')
        workload.ensure_index_and_load(src)

        wait_until(lambda: dbname in db.list_database(using="target"), TIMEOUT, what=f"database {dbname} on TARGET")
        workload.use_db("target", dbname)
        tgt = loaded_target(name)
        assert sorted(p.name for p in tgt.partitions) == sorted(p.name for p in src.partitions)
        rows = wait_rows_equal(src, tgt, "varchar")
        assert len(rows) == 157
        p1 = Partition(tgt, "p1").query('pk != ""', output_fields=["count(*)"], consistency_level="Strong")
        assert p1[0]["count(*)"] == 59
        src.drop()
        wait_until(lambda: not target_has(name), TIMEOUT, what=f"{name} dropped on TARGET")
    finally:
        workload.use_db("source", "default")
        workload.use_db("target", "default")
    db.drop_database(dbname, using="source")
    wait_until(lambda: dbname not in db.list_database(using="target"), TIMEOUT, what=f"{dbname} dropped on TARGET")


def test_index_load_release_and_drop_partition(cdc):
    name = unique_name("idx")
    src = workload.create_collection("source", name, shards=1)
    src.create_partition("p2")
    src.insert(workload.rows(list(range(300))))
    src.create_index("vec", {"index_type": "IVF_FLAT", "metric_type": "IP", "params": {"nlist": 16}},
                     index_name="vec_ivf", timeout=120)
    src.load(timeout=300)
    wait_until(lambda: target_has(name), TIMEOUT, what=f"{name} on TARGET")
    tgt = Collection(name, using="target")
    wait_until(lambda: tgt.has_index(), TIMEOUT, what="the index on TARGET")
    assert tgt.index().params == src.index().params
    assert tgt.index().index_name == "vec_ivf"
    wait_until(lambda: str(utility.load_state(name, using="target")) == "Loaded", TIMEOUT,
               what="TARGET collection loaded")
    rows = wait_rows_equal(src, tgt)
    assert len(rows) == 300
    src.flush()  # replicated: TARGET seals and persists its segments too
    wait_until(lambda: tgt.num_entities == 300, TIMEOUT, what="300 flushed rows on TARGET")

    src.release()
    wait_until(lambda: str(utility.load_state(name, using="target")) == "NotLoad", TIMEOUT,
               what="TARGET collection released")
    src.drop_partition("p2")
    wait_until(lambda: not tgt.has_partition("p2"), TIMEOUT, what="p2 dropped on TARGET")
    src.drop_index()
    wait_until(lambda: not tgt.has_index(), TIMEOUT, what="index dropped on TARGET")
    src.drop()
    wait_until(lambda: not target_has(name), TIMEOUT, what=f"{name} dropped on TARGET")
