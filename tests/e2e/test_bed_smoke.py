"""Smoke tests proving the local test bed is real (issue 7 §4).

On SOURCE: create a collection (int64 pk, 128-dim float vector, varchar, JSON), insert 10 000
rows, flush, create an index, load, count(*). Then look at the wire: the Insert messages on the
source's Kafka DML topics, the collection's keys under the source etcd root, and CreateIndex /
LoadCollection on the source replicate channel. TARGET accepts the same operations.

Run: $PYTHON -m pytest tests/e2e/test_bed_smoke.py -q   (PYTHON from `scripts/testbed.sh env`)
"""
import pytest

import helpers as h

pytestmark = pytest.mark.bed

ROWS = 10_000
SHARDS = 2


@pytest.fixture(scope="module")
def src_coll(source):
    from pymilvus import utility
    name = h.unique_name("bed_smoke_src")
    coll = h.run_workload(source, name, rows=ROWS, shards=SHARDS)
    yield coll
    utility.drop_collection(name, using=source)


@pytest.fixture(scope="module")
def tgt_coll(target):
    from pymilvus import utility
    name = h.unique_name("bed_smoke_tgt")
    coll = h.run_workload(target, name, rows=ROWS, shards=SHARDS)
    yield coll
    utility.drop_collection(name, using=target)


def test_msg_type_constants_match_bundled_protos():
    from pymilvus.grpc_gen import common_pb2
    mt = common_pb2.MsgType
    assert mt.Value("Insert") == h.MSG_INSERT == 400
    assert mt.Value("CreateIndex") == h.MSG_CREATE_INDEX
    assert mt.Value("LoadCollection") == h.MSG_LOAD_COLLECTION
    assert mt.Value("Flush") == h.MSG_FLUSH
    assert mt.Value("TimeTick") == h.MSG_TIME_TICK


def test_both_milvus_answer(source, target):
    from pymilvus import utility
    for alias in (source, target):
        assert utility.get_server_version(using=alias).startswith("v2.3.")


def test_source_count_star(src_coll):
    assert h.count_star(src_coll) == ROWS
    hit = src_coll.query("pk == 4242", output_fields=["title", "meta"], consistency_level="Strong")
    assert hit and hit[0]["title"] == "row-4242" and hit[0]["meta"]["i"] == 4242


def test_source_inserts_on_kafka_dml_topics(bed_env, source, src_coll):
    from pymilvus.grpc_gen import msg_pb2
    brokers = bed_env["KAFKA_BROKERS"]
    prefix = bed_env["SOURCE_CHANNEL_PREFIX"]
    desc = h.describe_raw(source, src_coll.name)
    pchannels = sorted(set(desc.physical_channel_names))
    assert len(desc.virtual_channel_names) == SHARDS
    assert all(p.startswith(prefix + "-rootcoord-dml_") for p in pchannels), pchannels
    for v, p in zip(desc.virtual_channel_names, desc.physical_channel_names):
        assert v.startswith(p + "_%dv" % desc.collectionID), (v, p)
    topics = h.kafka_topics(brokers)
    assert set(pchannels) <= set(topics), (pchannels, topics)

    def inserted_rows():
        rows, types = 0, set()
        for topic in pchannels:
            for _, payload in h.read_topic(brokers, topic):
                t = h.msg_type(payload)
                types.add(t)
                if t != h.MSG_INSERT:
                    continue
                req = msg_pb2.InsertRequest()
                req.ParseFromString(payload)
                if req.collectionID == desc.collectionID:
                    assert req.shardName in desc.virtual_channel_names
                    assert req.base.msg_type == 400
                    rows += req.num_rows
        assert h.MSG_TIME_TICK in types and h.MSG_CREATE_COLLECTION in types, types
        return rows == ROWS

    h.wait_until(inserted_rows, 90, "10000 inserted rows on %s" % pchannels)


def test_source_collection_key_in_etcd(bed_env, source, src_coll):
    ep = bed_env["ETCD_ENDPOINTS"]
    meta = "%s/%s" % (bed_env["SOURCE_ETCD_ROOT"], bed_env["SOURCE_META_SUBPATH"])
    coll_id = h.describe_raw(source, src_coll.name).collectionID
    key = "%s/root-coord/database/collection-info/1/%d" % (meta, coll_id)  # db 1 = default
    keys = h.etcd_keys(ep, meta + "/root-coord/database/collection-info/")
    assert key in keys, keys
    value = h.etcd_value(ep, key)
    assert src_coll.name.encode() in value            # CollectionInfo.schema.name
    assert value != b"\xe2\x9b\xbc"                     # not the tombstone
    fields = h.etcd_keys(ep, "%s/root-coord/fields/%d/" % (meta, coll_id))
    ids = sorted(int(k.rsplit("/", 1)[1]) for k in fields)
    assert ids[:4] == [0, 1, 100, 101] and 103 in ids, ids  # system fields 0/1 + user fields


def test_source_replicate_channel_has_index_and_load(bed_env, src_coll):
    from pymilvus.grpc_gen import milvus_pb2
    brokers = bed_env["KAFKA_BROKERS"]
    topic = bed_env["SOURCE_REPLICATE_CHANNEL"]
    want = {
        h.MSG_CREATE_INDEX: milvus_pb2.CreateIndexRequest,
        h.MSG_LOAD_COLLECTION: milvus_pb2.LoadCollectionRequest,
        h.MSG_FLUSH: milvus_pb2.FlushRequest,
    }

    def seen():
        found = set()
        for _, payload in h.read_topic(brokers, topic):
            t = h.msg_type(payload)
            if t not in want:
                continue
            req = want[t]()
            req.ParseFromString(payload)
            names = list(req.collection_names) if t == h.MSG_FLUSH else [req.collection_name]
            if src_coll.name in names:
                found.add(t)
        return found == set(want)

    h.wait_until(lambda: topic in h.kafka_topics(brokers), 60, "topic " + topic)
    h.wait_until(seen, 90, "CreateIndex, LoadCollection and Flush on " + topic)


@pytest.mark.writable_target("it inserts 10 000 rows into TARGET")
def test_target_accepts_same_operations(bed_env, target, tgt_coll):
    assert h.count_star(tgt_coll) == ROWS
    res = tgt_coll.search([[0.5] * h.DIM], "vec", {"metric_type": "L2", "params": {"nprobe": 8}},
                          limit=3, consistency_level="Strong")
    assert len(res[0]) == 3
    # the target is its own namespace: its channels carry its own prefix
    desc = h.describe_raw(target, tgt_coll.name)
    assert all(p.startswith(bed_env["TARGET_CHANNEL_PREFIX"] + "-rootcoord-dml_")
               for p in desc.physical_channel_names), list(desc.physical_channel_names)


def test_replica_refuses_plain_inserts(replica):
    """REPLICA runs with common.ttMsgEnabled=false: it is written only via ReplicateMessage,
    so a plain Insert must be refused (milvus-wire.md §4.5). Skipped unless started."""
    from pymilvus import Collection, MilvusException, utility
    name = h.unique_name("bed_smoke_rep")
    coll = Collection(name, h.smoke_schema(), using=replica)
    try:
        with pytest.raises(MilvusException, match="deny to write the message to mq"):
            coll.insert(h.smoke_rows(0, 10), timeout=60)
    finally:
        utility.drop_collection(name, using=replica)
