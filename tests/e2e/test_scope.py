"""Task scope end to end: several named collections and databases in one task, overlap rules
between tasks, renames that leave the scope, use_start_position per entry, name_mapping with
aliases, and what an operator sees and does when one collection cannot be applied (the task
pauses naming it; resume after a fix; skip it)."""
import pytest
from pymilvus import Collection, CollectionSchema, DataType, FieldSchema, connections, db, utility

from cdc_server import CdcServer, wait_until
from helpers import create_task, unique_name
from helpers import get_task as get
import workload

pytestmark = pytest.mark.bed

TIMEOUT = 120


_ALIASES = {}  # alias -> (uri, database)


def _connect(alias):
    if not connections.has_connection(alias):
        uri, dbname = _ALIASES[alias]
        connections.connect(alias=alias, uri=uri, db_name=dbname, timeout=60)
    return alias


def conn(bed_env, side, dbname):
    """A pymilvus alias bound to one database of SOURCE or TARGET; connected when first used
    successfully (a TARGET database appears only once the task created it)."""
    alias = "%s_%s" % (side, dbname)
    _ALIASES[alias] = (bed_env["SOURCE_MILVUS_URI" if side == "src" else "TARGET_MILVUS_URI"], dbname)
    try:
        _connect(alias)
    except Exception:  # noqa: BLE001 - no such database yet
        pass
    return alias


def has(alias, name):
    try:
        return utility.has_collection(name, using=_connect(alias))
    except Exception:  # noqa: BLE001 - the database is not there yet
        return False


def rows(coll):
    workload.ensure_index_and_load(coll)
    return workload.all_rows(coll)


def wait_rows_equal(src, tgt):
    expected = rows(src)
    wait_until(lambda: rows(tgt) == expected, TIMEOUT, interval=0.5, what=f"rows of {src.name} on TARGET")
    return expected


def rename(alias, dbname, old, new):
    """RenameCollection within `dbname`. pymilvus 2.3.7's rename_collection sends no database
    names, and Milvus 2.3.5 then moves the collection into `default` (docs/milvus-notes.md)."""
    from pymilvus.grpc_gen import milvus_pb2
    status = connections._fetch_handler(alias)._stub.RenameCollection(milvus_pb2.RenameCollectionRequest(
        db_name=dbname, oldName=old, newName=new, newDBName=dbname), timeout=30)
    assert status.code == 0 and status.error_code == 0, status


@pytest.fixture(scope="module")
def srv(tmp_path_factory, bed_env, source, target):
    s = CdcServer(tmp_path_factory.mktemp("scope"), bed_env=bed_env).start()
    yield s
    for t in s.post("list")["data"]["tasks"]:
        s.post("delete", {"task_id": t["task_id"]})
    s.stop()


@pytest.fixture(scope="module")
def dbs(bed_env, source):
    """Three databases of the module's own on SOURCE, dropped with their collections at the end."""
    names = [unique_name("sx"), unique_name("sy"), unique_name("sz")]
    for n in names:
        db.create_database(n, using="source")
    yield names
    for side in ("src", "tgt"):
        for n in names:
            alias = conn(bed_env, side, n)
            try:
                for c in utility.list_collections(using=alias):
                    Collection(c, using=alias).drop()
                db.drop_database(n, using="target" if side == "tgt" else "source")
            except Exception:  # noqa: BLE001 - not on TARGET
                pass


def test_several_named_collections_and_databases(srv, bed_env, dbs):
    x, y, _ = dbs
    sx, sy, tx, ty = (conn(bed_env, "src", x), conn(bed_env, "src", y), conn(bed_env, "tgt", x),
                      conn(bed_env, "tgt", y))
    a, b, c = (workload.create_collection(sx, n, shards=1) for n in ("a", "b", "c"))
    d = workload.create_collection(sy, "d", shards=1)
    task_id = create_task(srv, bed_env, db_collections={x: [{"name": "a"}, {"name": "b"}], y: [{"name": "*"}]})
    for coll, n in ((a, 10), (b, 20), (c, 30), (d, 40)):
        coll.insert(workload.rows(list(range(n))))
    e = workload.create_collection(sy, "e", shards=1)  # created later, covered by y's `*`
    e.insert(workload.rows(list(range(5))))
    for src in (a, b, d, e):
        wait_until(lambda: has(ty if src in (d, e) else tx, src.name), TIMEOUT, what=f"{src.name} on TARGET")
        tgt = Collection(src.name, using=ty if src in (d, e) else tx)
        assert len(wait_rows_equal(src, tgt)) == {"a": 10, "b": 20, "d": 40, "e": 5}[src.name]
    assert not has(tx, "c")  # not named

    # Overlap rules per collection: x.c is free, x.a is taken.
    other = srv.post("create", {"milvus_connect_param": {"uri": bed_env["TARGET_MILVUS_URI"]},
                                "db_collections": {x: [{"name": "a"}]}})
    assert other["code"] == 400 and "duplicate" in other["message"], other
    task2 = create_task(srv, bed_env, db_collections={x: [{"name": "c"}]})
    c.insert(workload.rows(list(range(30, 35))))
    wait_until(lambda: has(tx, "c"), TIMEOUT, what="c on TARGET")
    tgt_c = Collection("c", using=tx)
    # the second task starts "now": the rows written before it are not copied, the later ones are
    wait_until(lambda: sorted(rows(tgt_c)) == list(range(30, 35)), TIMEOUT, what="c's new rows")

    # A rename out of the scope: the task stops following it; TARGET keeps what it had.
    rename(sx, x, "a", "a_renamed")
    Collection("a_renamed", using=sx).insert(workload.rows([100, 101]))
    b.insert(workload.rows([200]))  # the task still runs for the rest
    wait_until(lambda: 200 in rows(Collection("b", using=tx)), TIMEOUT, what="b's later row")
    assert not has(tx, "a_renamed")
    assert sorted(rows(Collection("a", using=tx))) == list(range(10))
    assert get(srv, task_id)["state"] == "Running"
    srv.post("delete", {"task_id": task2})


def test_use_start_position_per_entry(srv, bed_env, dbs):
    """Entry "pk" replays its retained log from its creation (a partition-key collection with
    deletes and upserts); entry "plain" of the same task starts from now."""
    z = dbs[2]
    sz, tz = conn(bed_env, "src", z), conn(bed_env, "tgt", z)
    schema = CollectionSchema([FieldSchema("pk", DataType.VARCHAR, is_primary=True, max_length=32),
                               FieldSchema("tenant", DataType.INT64, is_partition_key=True),
                               FieldSchema("vec", DataType.FLOAT_VECTOR, dim=workload.DIM)])
    pk = Collection("pk", schema, using=sz, num_partitions=8, shards_num=2)
    vec = [0.5] * workload.DIM
    pk.insert([{"pk": "k%d" % i, "tenant": i % 5, "vec": vec} for i in range(300)])
    pk.delete('pk in ["k1", "k2"]')
    pk.upsert([{"pk": "k3", "tenant": 4, "vec": vec}, {"pk": "new", "tenant": 1, "vec": vec}])
    plain = workload.create_collection(sz, "plain", shards=1)
    plain.insert(workload.rows(list(range(50))))  # before the task: not copied
    create_task(srv, bed_env, db_collections={z: [{"name": "pk", "use_start_position": True}, {"name": "plain"}]})
    plain.insert(workload.rows(list(range(50, 60))))
    for coll in (pk, plain):
        wait_until(lambda: has(tz, coll.name), TIMEOUT, what=f"{coll.name} on TARGET")
    tgt_pk = Collection("pk", using=tz)
    for c in (pk, tgt_pk):
        if not c.has_index():
            c.create_index("vec", {"index_type": "FLAT", "metric_type": "L2", "params": {}})
        c.load()

    def keyed(c):
        return {r["pk"]: r["tenant"] for r in c.query('pk != ""', output_fields=["tenant"],
                                                       consistency_level="Strong", limit=16384)}
    expected = keyed(pk)
    assert len(expected) == 300 - 2 + 1
    wait_until(lambda: keyed(tgt_pk) == expected, TIMEOUT, interval=0.5, what="the replayed partition-key rows")
    assert tgt_pk.describe()["num_partitions"] == 8
    assert sorted(keyed(tgt_pk).items()) == sorted(expected.items())
    tgt_plain = Collection("plain", using=tz)
    wait_until(lambda: sorted(rows(tgt_plain)) == list(range(50, 60)), TIMEOUT, what="plain's rows since the start")


def test_name_mapping_keeps_aliases_on_the_mapped_name(srv, bed_env, dbs, source):
    src_name, alias = unique_name("nm"), unique_name("nm_alias")
    mapped_db, mapped_name = unique_name("mapped"), unique_name("mapped")
    coll = workload.create_collection("source", src_name, shards=1)
    utility.create_alias(src_name, alias, using="source")
    create_task(srv, bed_env, collection_infos=[{"name": src_name}],
                name_mapping=[{"source_db": "default", "target_db": mapped_db,
                               "collection_mapping": {src_name: mapped_name}}])
    coll.insert(workload.rows(list(range(7))))
    tm = conn(bed_env, "tgt", mapped_db)
    wait_until(lambda: has(tm, mapped_name), TIMEOUT, what="the mapped collection on TARGET")
    wait_until(lambda: Collection(mapped_name, using=tm).aliases == [alias], TIMEOUT, what="the alias on it")
    assert sorted(rows(Collection(alias, using=tm))) == list(range(7))  # read through the alias
    utility.drop_alias(alias, using="source")
    wait_until(lambda: Collection(mapped_name, using=tm).aliases == [], TIMEOUT, what="the alias dropped")
    coll.drop()
    wait_until(lambda: not has(tm, mapped_name), TIMEOUT, what="the drop on TARGET")
    db.drop_database(mapped_db, using="target")


def test_a_collection_that_cannot_be_applied_pauses_the_task_by_name(srv, bed_env, source, target):
    """TARGET already has `clash` with another schema. The task pauses naming the database,
    collection, operation and position; get shows it; after the operator drops TARGET's
    `clash`, resume continues. A second clash is left behind with `skip`."""
    clash, clash2, fine = unique_name("clash"), unique_name("clash2"), unique_name("fine")
    other = CollectionSchema([FieldSchema("id", DataType.INT64, is_primary=True),
                              FieldSchema("v", DataType.FLOAT_VECTOR, dim=4)])
    Collection(clash, other, using="target")
    Collection(clash2, other, using="target")
    task_id = create_task(srv, bed_env, collection_infos=[{"name": clash}, {"name": clash2}, {"name": fine}])
    ok = workload.create_collection("source", fine, shards=1)
    ok.insert(workload.rows(list(range(10))))
    wait_until(lambda: utility.has_collection(fine, using="target"), TIMEOUT, what="fine on TARGET")
    wait_rows_equal(ok, Collection(fine, using="target"))

    src_clash = workload.create_collection("source", clash, shards=1)
    src_clash.insert(workload.rows(list(range(3))))
    t = wait_until(lambda: (lambda t: t if t["state"] == "Paused" else None)(get(srv, task_id)), TIMEOUT,
                   what="the task to pause")
    assert "default." + clash in t["reason"] and "different schema" in t["reason"], t["reason"]
    failed = srv.post("get", {"task_id": task_id})["data"]["task"]["failed_change"]
    assert failed["db"] == "default" and failed["collection"] == clash, failed
    assert failed["operation"] == "CreateCollection" and failed["message"], failed

    Collection(clash, using="target").drop()  # the operator's fix
    assert srv.post("resume", {"task_id": task_id})["code"] == 200
    wait_until(lambda: utility.has_collection(clash, using="target"), TIMEOUT, what="clash created after resume")
    wait_rows_equal(src_clash, Collection(clash, using="target"))
    assert "failed_change" not in get(srv, task_id)

    src_clash2 = workload.create_collection("source", clash2, shards=1)
    src_clash2.insert(workload.rows(list(range(4))))
    wait_until(lambda: get(srv, task_id)["state"] == "Paused", TIMEOUT, what="the second pause")
    reply = srv.post("skip", {"task_id": task_id, "collection_name": clash2})
    assert reply["code"] == 200, reply
    assert get(srv, task_id)["skipped_collections"] == ["default." + clash2]
    assert srv.post("resume", {"task_id": task_id})["code"] == 200
    ok.insert(workload.rows(list(range(10, 20))))
    wait_until(lambda: sorted(rows(Collection(fine, using="target"))) == list(range(20)), TIMEOUT,
               what="fine keeps replicating after the skip")
    assert get(srv, task_id)["state"] == "Running"
    assert Collection(clash2, using="target").schema.fields[0].name == "id"  # left as it was
    srv.post("delete", {"task_id": task_id})
    for n in (clash, clash2, fine):
        Collection(n, using="source").drop()
        if utility.has_collection(n, using="target"):
            Collection(n, using="target").drop()
