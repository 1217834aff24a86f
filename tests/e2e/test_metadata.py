"""What a Milvus application relies on besides rows, replicated end to end: partition-key
collections, aliases, renames, collection properties, roles and grants. Each test changes
SOURCE with pymilvus and polls TARGET until it shows what an operator would check."""
import pytest
from pymilvus import MilvusException, Collection, CollectionSchema, DataType, FieldSchema, Role, connections, db, utility

from cdc_server import CdcServer, wait_until
from helpers import unique_name
import workload

pytestmark = pytest.mark.bed

TIMEOUT = 120
USER_WITH_PASSWORD = unique_name("pwuser")


@pytest.fixture(scope="module")
def admin(bed_env):
    """SOURCE and TARGET connections that send root's credentials: RBAC calls need a user."""
    connections.connect(alias="src_admin", uri=bed_env["SOURCE_MILVUS_URI"], token="root:Milvus", timeout=60)
    connections.connect(alias="tgt_admin", uri=bed_env["TARGET_MILVUS_URI"], token="root:Milvus", timeout=60)
    yield
    connections.disconnect("src_admin")
    connections.disconnect("tgt_admin")


@pytest.fixture(scope="module")
def pre(source):
    """A collection with an alias and a property that exist before the task starts."""
    name = unique_name("pre")
    src = workload.create_collection("source", name, shards=1)
    src.set_properties({"collection.ttl.seconds": "86400"})
    alias = unique_name("pre_alias")
    utility.create_alias(name, alias, using="source")
    src.insert(workload.rows(list(range(50))))
    yield {"name": name, "alias": alias, "coll": src}
    utility.drop_alias(alias, using="source")
    src.drop()


@pytest.fixture(scope="module")
def cdc(tmp_path_factory, bed_env, source, target, admin, pre):
    srv = CdcServer(tmp_path_factory.mktemp("meta"), bed_env=bed_env).start()
    reply = srv.post("create", {
        "milvus_connect_param": {"uri": bed_env["TARGET_MILVUS_URI"], "token": "root:Milvus", "connect_timeout": 10},
        "db_collections": {"*": [{"name": "*"}]},
        "extra_info": {"enable_user_role": True},
        "user_passwords": {USER_WITH_PASSWORD: "Initial-pw-2"}})
    assert reply["code"] == 200, reply
    srv.task_id = reply["data"]["task_id"]
    wait_until(lambda: "replicating" in get(srv).get("reason", ""), 60, what="the task to start replicating")
    yield srv
    srv.post("delete", {"task_id": srv.task_id})
    srv.stop()


def wait_equal(source_value, target_value, what, timeout=TIMEOUT):
    """Polls until target_value() == source_value(); on timeout asserts it (pytest shows both)."""
    def same():
        try:
            return target_value() == source_value()
        except Exception:  # noqa: BLE001 - not there yet
            return False
    try:
        wait_until(same, timeout, interval=0.5, what=what)
    except AssertionError:
        assert target_value() == source_value(), what


def get(srv):
    return srv.post("get", {"task_id": srv.task_id})["data"]["task"]


def assert_running(srv):
    t = get(srv)
    assert t["state"] == "Running", t


def aliases(name, using):
    return sorted(Collection(name, using=using).aliases)


def target_has(name):
    return utility.has_collection(name, using="target")


def pk_schema(pk_type, key_type):
    pk = (FieldSchema("pk", DataType.INT64, is_primary=True) if pk_type == "int64"
          else FieldSchema("pk", DataType.VARCHAR, is_primary=True, max_length=64))
    key = (FieldSchema("tenant", DataType.INT64, is_partition_key=True) if key_type == "int64"
           else FieldSchema("tenant", DataType.VARCHAR, max_length=32, is_partition_key=True))
    return CollectionSchema([pk, key, FieldSchema("vec", DataType.FLOAT_VECTOR, dim=workload.DIM),
                             FieldSchema("title", DataType.VARCHAR, max_length=64)])


def pk_rows(pks, key_type, tag="v1"):
    import random
    rnd = random.Random(len(pks))
    return [{"pk": pk, "tenant": (i % 13) if key_type == "int64" else "t%d" % (i % 13),
             "vec": [rnd.random() for _ in range(workload.DIM)], "title": "%s-%s" % (tag, pk)}
            for i, pk in enumerate(pks)]


def rows_by_pk(coll, expr, fields=("pk", "tenant", "title")):
    return {r["pk"]: {k: r[k] for k in fields}
            for r in coll.query(expr, output_fields=list(fields), consistency_level="Strong", limit=16384)}


def loaded(coll):
    if not coll.has_index():
        coll.create_index("vec", {"index_type": "FLAT", "metric_type": "L2", "params": {}}, timeout=120)
    coll.load(timeout=300)
    return coll


def test_partition_key_collection_created_under_a_wildcard_task(cdc):
    """The issue's scenario: INT64 partition key, VARCHAR primary key, created after the task
    started. Rows reach TARGET in the same partitions, and the task keeps running."""
    name = unique_name("pkey")
    src = Collection(name, pk_schema("varchar", "int64"), using="source", num_partitions=16)
    src.insert(pk_rows(["k%d" % i for i in range(400)], "int64"))
    src.delete('pk in ["k1", "k2", "k3"]')
    src.upsert(pk_rows(["k4", "k5", "new"], "int64", tag="v2"))
    loaded(src)
    wait_until(lambda: target_has(name), TIMEOUT, what=f"{name} on TARGET")
    tgt = loaded(Collection(name, using="target"))
    expected = rows_by_pk(src, 'pk != ""')
    assert len(expected) == 400 - 3 + 1
    wait_until(lambda: rows_by_pk(tgt, 'pk != ""') == expected, TIMEOUT, what="partition-key rows equal")
    assert tgt.describe()["num_partitions"] == src.describe()["num_partitions"] == 16
    # Milvus hashed every key to the same partition on both sides (a partition-key collection
    # refuses partition names in queries; flushed entity counts per partition tell).
    src.flush()  # replicated: TARGET flushes too
    per_partition = {p.name: p.num_entities for p in src.partitions}
    assert sum(per_partition.values()) == 400 + 3 and len([n for n in per_partition.values() if n]) > 4
    wait_until(lambda: {p.name: p.num_entities for p in tgt.partitions} == per_partition, TIMEOUT,
               what="entities per partition equal")
    assert rows_by_pk(tgt, "tenant == 7") == rows_by_pk(src, "tenant == 7")
    assert_running(cdc)
    src.drop()


def test_aliases_follow_the_source(cdc, pre):
    # An alias that existed when the task started.
    wait_until(lambda: target_has(pre["name"]) and aliases(pre["name"], "target") == [pre["alias"]], TIMEOUT,
               what="the pre-existing alias on TARGET")
    a, b = unique_name("ala"), unique_name("alb")
    ca = workload.create_collection("source", a, shards=1)
    cb = workload.create_collection("source", b, shards=1)
    ca.insert(workload.rows(list(range(10))))
    cb.insert(workload.rows(list(range(100, 130))))
    alias = unique_name("al")
    utility.create_alias(a, alias, using="source")
    wait_until(lambda: target_has(a) and aliases(a, "target") == [alias], TIMEOUT, what="alias created on TARGET")
    utility.alter_alias(b, alias, using="source")
    wait_until(lambda: target_has(b) and aliases(b, "target") == [alias] and aliases(a, "target") == [], TIMEOUT,
               what="alias re-pointed on TARGET")
    # A query through the alias on TARGET reads the collection the alias names on SOURCE.
    loaded(cb)
    tgt_b = loaded(Collection(b, using="target"))
    via_alias = Collection(alias, using="target")
    expected = workload.all_rows(cb)
    def rows_via_alias():
        try:
            return workload.all_rows(via_alias)
        except MilvusException as e:  # TARGET's proxy may still resolve the alias to `a` for a moment
            return str(e)
    wait_until(lambda: rows_via_alias() == expected, TIMEOUT, what="rows through the alias")
    assert len(expected) == 30
    utility.drop_alias(alias, using="source")
    wait_until(lambda: aliases(b, "target") == [], TIMEOUT, what="alias dropped on TARGET")
    assert_running(cdc)
    tgt_b.release()
    ca.drop()
    cb.drop()


def test_rename_is_followed(cdc):
    old, new = unique_name("ren"), unique_name("renamed")
    src = workload.create_collection("source", old, shards=2)
    src.insert(workload.rows(list(range(100))))
    wait_until(lambda: target_has(old), TIMEOUT, what=f"{old} on TARGET")
    utility.rename_collection(old, new, using="source")
    src = Collection(new, using="source")
    src.insert(workload.rows(list(range(100, 150))))  # written under the new name
    src.delete("pk in [0, 1]")
    wait_until(lambda: target_has(new) and not target_has(old), TIMEOUT, what="the rename on TARGET")
    loaded(src)
    tgt = loaded(Collection(new, using="target"))
    expected = workload.all_rows(src)
    assert len(expected) == 148
    wait_until(lambda: workload.all_rows(tgt) == expected, TIMEOUT, what="rows after the rename")
    assert_running(cdc)
    tgt.release()
    src.drop()


def test_rename_into_another_database(cdc):
    dbname, name, new = unique_name("rdb"), unique_name("mv"), unique_name("moved")
    db.create_database(dbname, using="source")
    src = workload.create_collection("source", name, shards=1)
    src.insert(workload.rows(list(range(20))))
    wait_until(lambda: target_has(name), TIMEOUT, what=f"{name} on TARGET")
    from pymilvus.grpc_gen import milvus_pb2  # pymilvus 2.3.7 has no new_db argument
    handler = connections._fetch_handler("source")
    status = handler._stub.RenameCollection(milvus_pb2.RenameCollectionRequest(
        db_name="default", oldName=name, newName=new, newDBName=dbname), timeout=30)
    assert status.code == 0, status
    try:
        workload.use_db("source", dbname)
        workload.use_db("target", dbname)
        src = Collection(new, using="source")
        src.insert(workload.rows(list(range(20, 40))))
        wait_until(lambda: utility.has_collection(new, using="target"), TIMEOUT, what=f"{dbname}.{new} on TARGET")
        loaded(src)
        tgt = loaded(Collection(new, using="target"))
        expected = workload.all_rows(src)
        assert len(expected) == 40
        wait_until(lambda: workload.all_rows(tgt) == expected, TIMEOUT, what="rows after the move")
        tgt.release()
        src.drop()
    finally:
        workload.use_db("source", "default")
        workload.use_db("target", "default")
    assert not target_has(name)
    assert_running(cdc)
    db.drop_database(dbname, using="source")


def test_properties_follow_the_source(cdc, pre):
    def props(name, using):
        return Collection(name, using=using).describe()["properties"]
    wait_equal(lambda: props(pre["name"], "source"), lambda: props(pre["name"], "target"),
               "properties set before the task")
    name = unique_name("props")
    src = Collection(name, workload.schema(), using="source", shards_num=1,
                     properties={"collection.ttl.seconds": "1000"})
    wait_until(lambda: target_has(name) and props(name, "target").get("collection.ttl.seconds") == "1000", TIMEOUT,
               what="the TTL given at creation")
    src.set_properties({"collection.ttl.seconds": "60", "collection.autocompaction.enabled": "false"})
    wait_equal(lambda: props(name, "source"), lambda: props(name, "target"), "altered properties")
    assert props(name, "target")["collection.ttl.seconds"] == "60"
    assert_running(cdc)
    src.drop()


def test_roles_and_grants_follow_the_source(cdc, admin):
    role_name, user = unique_name("role"), unique_name("user")
    coll = unique_name("granted")
    workload.create_collection("source", coll, shards=1)
    role = Role(role_name, using="src_admin")
    role.create()
    utility.create_user(user, "Initial-pw-1", using="src_admin")
    role.add_user(user)
    role.grant("Collection", coll, "Search")
    role.grant("Global", "*", "DescribeCollection")

    def grants(using):
        return sorted((g.object, g.object_name, g.db_name, g.privilege)
                      for g in Role(role_name, using=using).list_grants().groups)
    wait_until(lambda: utility.list_roles(include_user_info=False, using="tgt_admin") and
               role_name in [r.role_name for r in utility.list_roles(False, using="tgt_admin").groups] and
               grants("tgt_admin") == grants("src_admin"), TIMEOUT, what="role and grants on TARGET")
    assert grants("tgt_admin") == [("Collection", coll, "default", "Search"),
                                   ("Global", "*", "default", "DescribeCollection")]
    # The user has no password the task knows: it is reported, not silently skipped.
    wait_until(lambda: user in get(cdc).get("missing_users", []), TIMEOUT, what="the missing user in get")
    # A user whose initial password the task was given is created on TARGET, with its role.
    utility.create_user(USER_WITH_PASSWORD, "Source-pw-9", using="src_admin")
    role.add_user(USER_WITH_PASSWORD)
    wait_until(lambda: USER_WITH_PASSWORD in utility.list_usernames(using="tgt_admin"), TIMEOUT,
               what="the user created on TARGET")
    wait_until(lambda: USER_WITH_PASSWORD in Role(role_name, using="tgt_admin").get_users(), TIMEOUT,
               what="the user bound to the role on TARGET")
    assert user in get(cdc)["missing_users"] and USER_WITH_PASSWORD not in get(cdc)["missing_users"]
    reply = cdc.post("get", {"task_id": cdc.task_id})
    assert "Initial-pw-2" not in str(reply) and "Initial-pw-2" not in cdc.log()  # never returned or logged
    role.revoke("Collection", coll, "Search")
    wait_until(lambda: grants("tgt_admin") == [("Global", "*", "default", "DescribeCollection")], TIMEOUT,
               what="the revoke on TARGET")
    role.remove_user(user)
    role.remove_user(USER_WITH_PASSWORD)
    role.revoke("Global", "*", "DescribeCollection")
    role.drop()
    wait_until(lambda: role_name not in [r.role_name for r in utility.list_roles(False, using="tgt_admin").groups],
               TIMEOUT, what="the role dropped on TARGET")
    utility.delete_user(user, using="src_admin")
    utility.delete_user(USER_WITH_PASSWORD, using="src_admin")
    wait_until(lambda: USER_WITH_PASSWORD not in utility.list_usernames(using="tgt_admin"), TIMEOUT,
               what="the user deleted on TARGET (deleted on SOURCE while the task ran)")
    assert_running(cdc)
    Collection(coll, using="source").drop()


def compact_until_expired(c, fresh, fresh_expire_at, side):
    """Compacts `c` until the rows older than the TTL are gone. A manual compaction right after a
    flush can find the segment not yet sealed and do nothing (seen on TARGET in CI), so it is
    asked again every 5 s, as Milvus's own compaction schedule would. Until `fresh_expire_at`
    (monotonic time) the fresh rows must all be there; after it they may have expired too (a slow
    machine), and only the absence of the old rows is checked."""
    import time
    deadline = time.monotonic() + TIMEOUT
    rows = None
    while time.monotonic() < deadline:
        c.compact()
        c.wait_for_compaction_completed(timeout=120)
        settle = time.monotonic() + 5
        while time.monotonic() < settle:
            before = time.monotonic()
            rows = sorted(workload.all_rows(c))
            if rows == fresh or (set(rows) <= set(fresh) and before >= fresh_expire_at):
                return
            assert set(rows) & set(fresh) == set(fresh) or before >= fresh_expire_at, \
                f"fresh rows gone from {side} before their TTL: {rows}"
            time.sleep(0.2)
    raise AssertionError(f"expired rows still on {side}: {rows}")


def test_ttl_expires_rows_alike(cdc):
    """A TTL set at creation is on TARGET; rows older than it are dropped by compaction on both
    sides alike. Compaction writes nothing to the log, so the test compacts both, as Milvus's
    own schedule would; TARGET's rows carry its own insert times (close to SOURCE's)."""
    import time
    name = unique_name("ttl")
    src = Collection(name, workload.schema(), using="source", shards_num=1,
                     properties={"collection.ttl.seconds": "15"})
    src.insert(workload.rows(list(range(20))))
    wait_until(lambda: target_has(name), TIMEOUT, what=f"{name} on TARGET")
    tgt = Collection(name, using="target")
    assert tgt.describe()["properties"] == {"collection.ttl.seconds": "15"}
    loaded(src)
    loaded(tgt)
    wait_until(lambda: len(workload.all_rows(tgt)) == 20, TIMEOUT, what="the first rows on TARGET")
    time.sleep(17)  # the first rows outlive the TTL on both sides; the fresh ones have 15 s
    fresh_expire_at = time.monotonic() + 15 - 1  # inserted now on SOURCE, a little later on TARGET
    src.insert(workload.rows(list(range(100, 105))))
    wait_until(lambda: len(workload.all_rows(tgt)) == 25, TIMEOUT, what="the fresh rows on TARGET")
    src.flush()  # replicated: TARGET flushes too
    wait_until(lambda: tgt.num_entities == 25, TIMEOUT, what="TARGET flushed")
    fresh = list(range(100, 105))
    for side, c in (("SOURCE", src), ("TARGET", tgt)):
        compact_until_expired(c, fresh, fresh_expire_at, side)
    assert_running(cdc)
    src.release()
    src.drop()
