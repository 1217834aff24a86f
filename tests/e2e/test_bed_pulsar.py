"""The Pulsar variant of the test bed (`scripts/testbed.sh up --mq pulsar`, docs/testbed.md).

On SOURCE: create a collection, insert rows, flush, count(*). Then look at the wire through the
broker's admin REST API and the PyPI pulsar-client: the DML topics exist under public/default
with the source's channel prefix, the Insert messages are there (Milvus 2.3 writes each message
as a ZSTD-compressed batch of one), and the broker keeps a week of retention. A faults test
restarts the broker and checks that old entries survive and SOURCE accepts inserts again.

Skipped unless the bed runs Pulsar (env SOURCE_MQ=pulsar); run it with
  TESTBED_PORT_OFFSET=... TESTBED_MQ=pulsar $PYTHON -m pytest tests/e2e/test_bed_pulsar.py -q
"""
import json
import urllib.request

import pytest

import helpers as h

pytestmark = pytest.mark.bed

ROWS = 2_000
SHARDS = 2


@pytest.fixture(scope="module", autouse=True)
def pulsar_bed(bed_env):
    if bed_env.get("SOURCE_MQ") != "pulsar":
        pytest.skip("the bed runs %s, not Pulsar (up --mq pulsar)" % bed_env.get("SOURCE_MQ", "kafka"))
    return bed_env


def admin(bed_env, path, raw=False, headers=None):
    """GET on the broker's admin REST API: parsed JSON (or (headers, bytes) with raw=True)."""
    with urllib.request.urlopen(bed_env["PULSAR_WEB_URL"] + path, timeout=30) as r:
        body = r.read()
        return (dict(r.headers), body) if raw else json.loads(body)


def topic_path(name):
    return "/admin/v2/persistent/public/default/" + name


def read_topic(bed_env, topic, timeout_ms=10_000):
    """Every message of a topic from the earliest, with a non-durable reader (batches unpacked)."""
    import pulsar
    client = pulsar.Client(bed_env["PULSAR_URL"], operation_timeout_seconds=30,
                           logger=pulsar.ConsoleLogger(pulsar.LoggerLevel.Error))
    try:
        reader = client.create_reader("persistent://public/default/" + topic, pulsar.MessageId.earliest)
        out = []
        while reader.has_message_available():
            out.append(reader.read_next(timeout_ms).data())
        return out
    finally:
        client.close()


@pytest.fixture(scope="module")
def src_coll(source):
    from pymilvus import utility
    name = h.unique_name("bed_pulsar_src")
    coll = h.run_workload(source, name, rows=ROWS, batch=1_000, shards=SHARDS)
    yield coll
    utility.drop_collection(name, using=source)


def test_env_and_cdc_config(pulsar_bed):
    import yaml
    assert "KAFKA_BROKERS" not in pulsar_bed
    assert pulsar_bed["PULSAR_URL"].startswith("pulsar://127.0.0.1:")
    with open(pulsar_bed["CDC_CONFIG"], encoding="utf-8") as f:
        cfg = yaml.safe_load(f)
    src = cfg["sourceConfig"]
    assert "kafka" not in src
    assert src["pulsar"]["address"] == pulsar_bed["PULSAR_URL"]
    assert src["pulsar"]["tenant"] == "public" and src["pulsar"]["namespace"] == "default"
    # the broker's defaults (no namespace policy): a week, no size limit
    applied = admin(pulsar_bed, topic_path(pulsar_bed["SOURCE_REPLICATE_CHANNEL"]) + "/retention?applied=true")
    assert applied == {"retentionTimeInMinutes": 10080, "retentionSizeInMB": -1}, applied


def test_source_inserts_on_pulsar_dml_topics(pulsar_bed, source, src_coll):
    from pymilvus.grpc_gen import msg_pb2
    prefix = pulsar_bed["SOURCE_CHANNEL_PREFIX"]
    assert h.count_star(src_coll) == ROWS
    desc = h.describe_raw(source, src_coll.name)
    pchannels = sorted(set(desc.physical_channel_names))
    assert all(p.startswith(prefix + "-rootcoord-dml_") for p in pchannels), pchannels
    topics = admin(pulsar_bed, "/admin/v2/persistent/public/default")
    for p in pchannels + [pulsar_bed["SOURCE_REPLICATE_CHANNEL"]]:
        assert "persistent://public/default/" + p in topics, (p, topics)
    for p in pchannels:
        st = admin(pulsar_bed, topic_path(p) + "/internalStats")
        assert st["numberOfEntries"] > 0, (p, st)

    def inserted_rows():
        rows = 0
        for topic in pchannels:
            for payload in read_topic(pulsar_bed, topic):
                if h.msg_type(payload) != h.MSG_INSERT:
                    continue
                req = msg_pb2.InsertRequest()
                req.ParseFromString(payload)
                if req.collectionID == desc.collectionID:
                    assert req.shardName in desc.virtual_channel_names
                    rows += req.num_rows
        return rows == ROWS

    h.wait_until(inserted_rows, 90, "%d inserted rows on %s" % (ROWS, pchannels))


def test_milvus_23_writes_zstd_batches_of_one(pulsar_bed, source, src_coll):
    # the first entry of a DML topic, as the broker stores it (reference notes, pulsar.md §1.3)
    p = sorted(set(h.describe_raw(source, src_coll.name).physical_channel_names))[0]
    hdrs, _ = admin(pulsar_bed, topic_path(p) + "/examinemessage?initialPosition=earliest&messagePosition=1",
                    raw=True)
    hdrs = {k.lower(): v for k, v in hdrs.items()}
    assert hdrs["x-pulsar-compression"] == "ZSTD", hdrs
    assert hdrs["x-pulsar-num-batch-message"] == "1", hdrs


def test_pulsar_client_batched_roundtrip(pulsar_bed):
    import pulsar
    topic = "persistent://public/default/" + h.unique_name("bed-pulsar-batch")
    client = pulsar.Client(pulsar_bed["PULSAR_URL"], logger=pulsar.ConsoleLogger(pulsar.LoggerLevel.Error))
    try:
        prod = client.create_producer(topic, batching_enabled=True, batching_max_messages=10,
                                      batching_max_publish_delay_ms=50,
                                      compression_type=pulsar.CompressionType.LZ4)
        for i in range(10):
            prod.send_async(b"m%d" % i, None)
        prod.flush()
    finally:
        client.close()
    assert read_topic(pulsar_bed, topic.rsplit("/", 1)[1]) == [b"m%d" % i for i in range(10)]


@pytest.mark.faults
def test_restart_keeps_topics_and_messages(pulsar_bed, source, src_coll):
    p = sorted(set(h.describe_raw(source, src_coll.name).physical_channel_names))[0]
    before = admin(pulsar_bed, topic_path(p) + "/internalStats")
    first_ledger = before["ledgers"][0]["ledgerId"]
    try:
        h.bed_ctl("restart", "pulsar")
    finally:
        h.bed_restore()
    after = admin(pulsar_bed, topic_path(p) + "/internalStats")
    assert after["ledgers"][0]["ledgerId"] == first_ledger
    assert after["numberOfEntries"] >= before["numberOfEntries"]
    # Milvus reconnects by itself: an insert blocks until the broker answers, then succeeds
    res = src_coll.insert(h.smoke_rows(ROWS, 10), timeout=120)
    assert res.insert_count == 10
    assert h.count_star(src_coll) == ROWS + 10
