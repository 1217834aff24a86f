"""One read of the source for many tasks (issue 17): three tasks of different scopes on one
server read every DML channel of the bed (4 shards each) through one shared reader per channel.
One task is paused while inserts, deletes and upserts keep coming, and resumed; every task's
collection ends equal to SOURCE row by row, and the others kept replicating meanwhile."""
import pytest
from pymilvus import Collection, db, utility

from cdc_server import CdcServer, wait_until
from helpers import create_task, unique_name
from helpers import get_task as get
import workload

pytestmark = pytest.mark.bed

TIMEOUT = 120


def rows(coll):
    workload.ensure_index_and_load(coll)
    return workload.all_rows(coll)


def equal_on_target(src, target_alias):
    if not utility.has_collection(src.name, using=target_alias):
        return False
    return rows(Collection(src.name, using=target_alias)) == rows(src)


@pytest.fixture
def srv(tmp_path, bed_env, source, target):
    s = CdcServer(tmp_path, bed_env=bed_env).start()
    yield s
    for t in s.post("list")["data"]["tasks"]:
        s.post("delete", {"task_id": t["task_id"]})
    s.stop()


@pytest.fixture
def other_db(bed_env, source, target):
    name = unique_name("shr")
    db.create_database(name, using="source")
    yield name
    for alias in ("source", "target"):
        try:
            db.using_database(name, using=alias)
            for c in utility.list_collections(using=alias):
                Collection(c, using=alias).drop()
            db.using_database("default", using=alias)
            db.drop_database(name, using=alias)
        except Exception:  # noqa: BLE001 - not on TARGET
            db.using_database("default", using=alias)


def test_tasks_of_different_scopes_share_the_reader_and_each_stays_exact(srv, bed_env, other_db):
    from pymilvus import connections
    connections.connect(alias="shr_src", uri=bed_env["SOURCE_MILVUS_URI"], db_name=other_db, timeout=60)
    a = workload.create_collection("source", unique_name("shr_a"), shards=4)
    b = workload.create_collection("source", unique_name("shr_b"), shards=4)
    c = workload.create_collection("shr_src", "c", shards=4)
    ta = create_task(srv, bed_env, db_collections={"default": [{"name": a.name}]})
    tb = create_task(srv, bed_env, db_collections={"default": [{"name": b.name}]})
    tc = create_task(srv, bed_env, db_collections={other_db: [{"name": "*"}]})

    for coll in (a, b, c):
        coll.insert(workload.rows(list(range(0, 300))))
    wait_until(lambda: equal_on_target(a, "target") and equal_on_target(b, "target"), TIMEOUT,
               what="a and b on TARGET")
    connections.connect(alias="shr_tgt", uri=bed_env["TARGET_MILVUS_URI"], db_name=other_db, timeout=60)
    wait_until(lambda: equal_on_target(c, "shr_tgt"), TIMEOUT, what="c on TARGET")
    log = srv.log()
    assert "joined the shared reader" in log, "the tasks should read through the shared reader"

    # b's task pauses; all three collections keep changing.
    assert srv.post("pause", {"task_id": tb})["code"] == 200
    for coll in (a, b, c):
        coll.insert(workload.rows(list(range(300, 600))))
        coll.delete("pk in [%s]" % ",".join(str(k) for k in range(0, 300, 3)))
        coll.upsert(workload.rows(list(range(1, 300, 3)), tag="v2"))
    wait_until(lambda: equal_on_target(a, "target"), TIMEOUT, what="a on TARGET while b's task is paused")
    wait_until(lambda: equal_on_target(c, "shr_tgt"), TIMEOUT, what="c on TARGET while b's task is paused")
    assert not equal_on_target(b, "target"), "b's task is paused: TARGET keeps b as it was"

    assert srv.post("resume", {"task_id": tb})["code"] == 200
    wait_until(lambda: equal_on_target(b, "target"), TIMEOUT, what="b on TARGET after the resume")
    for coll, alias in ((a, "target"), (b, "target"), (c, "shr_tgt")):
        assert equal_on_target(coll, alias), coll.name
        assert len(rows(coll)) == 500  # 600 written, 100 deleted, 100 upserted in place
    for t in (ta, tb, tc):
        assert get(srv, t)["state"] == "Running", get(srv, t)
    for coll in (a, b):
        coll.drop()
        utility.drop_collection(coll.name, using="target")
