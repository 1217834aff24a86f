#!/usr/bin/env python3
"""Capture real Milvus log messages from the test bed's SOURCE as unit-test data.

Runs a small scripted workload with pymilvus against SOURCE, then reads the raw Kafka messages
that the workload produced on the source DML topics and on the replicate topic, and writes them
under tests/testdata/bed-2.3/ (the corpus read by tests/unit/decode):

  <topic>.msgs   one file per topic: records of
                 [int64 LE kafka offset][int64 LE kafka timestamp ms][uint32 LE size][payload]
  index.json     the topics read (offset ranges), one line per kept message
                 {channel, offset, msg_type, size}, and the workload facts the tests assert
                 (names, ids, primary keys per operation, in order).

Only messages of this run are kept: DML/DDL messages of other collections and replicate-channel
messages naming other objects are dropped (other tests may share the bed), time ticks are kept.
Kafka offsets are the real ones, so a channel may show gaps where foreign messages were.

Run with the bed's venv:  eval "$(bash scripts/testbed.sh env)"; "$PYTHON" scripts/capture-messages.py
"""
import argparse
import json
import random
import struct
import subprocess
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "tests" / "testdata" / "bed-2.3"
DIM = 8

# common.MsgType values (checked against pymilvus's bundled common_pb2 at start-up)
MT = {
    "CreateCollection": 100, "DropCollection": 101, "LoadCollection": 106, "ReleaseCollection": 107,
    "CreatePartition": 200, "DropPartition": 201, "LoadPartitions": 205, "ReleasePartitions": 206,
    "CreateIndex": 300, "DropIndex": 302, "AlterIndex": 304, "Insert": 400, "Delete": 401,
    "Flush": 402, "TimeTick": 1200, "CreateCredential": 1500, "DeleteCredential": 1502,
    "UpdateCredential": 1503, "CreateRole": 1600, "DropRole": 1601, "OperateUserRole": 1602,
    "OperatePrivilege": 1606, "CreateDatabase": 1801, "DropDatabase": 1802, "AlterDatabase": 1804,
}


def log(msg):
    print("[capture %s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


def bed_env():
    r = subprocess.run(["bash", str(REPO / "scripts" / "testbed.sh"), "env"],
                       capture_output=True, text=True, check=True)
    env = {}
    for line in r.stdout.splitlines():
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            env[k.strip()] = v.strip()
    return env


def wait_until(pred, timeout, desc, interval=0.2):
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= end:
            raise SystemExit("timed out after %ss waiting for %s" % (timeout, desc))
        time.sleep(interval)


# ------------------------------------------------------------------------------------ Kafka

class Kafka:
    def __init__(self, brokers):
        from confluent_kafka import Consumer
        self.brokers = brokers
        self.consumer = Consumer({
            "bootstrap.servers": brokers,
            "group.id": "capture-" + uuid.uuid4().hex,
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "allow.auto.create.topics": False,
        })

    def topics(self):
        from confluent_kafka import KafkaException
        try:
            return set(self.consumer.list_topics(timeout=10).topics)
        except KafkaException as e:
            raise SystemExit("Kafka at %s is unreachable (%s); is the bed up? "
                             "Run: bash scripts/testbed.sh up" % (self.brokers, e))

    def high(self, topic):
        """High watermark of partition 0 (the offset the next message will get); 0 if absent."""
        from confluent_kafka import TopicPartition
        if topic not in self.topics():
            return 0
        _, hi = self.consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        return hi

    def read(self, topic, start, end, timeout=60):
        """Messages of partition 0 with start <= offset < end as (offset, ts_ms, payload)."""
        from confluent_kafka import KafkaError, TopicPartition
        out = []
        if end <= start:
            return out
        self.consumer.assign([TopicPartition(topic, 0, start)])
        deadline = time.monotonic() + timeout
        while not out or out[-1][0] < end - 1:
            if time.monotonic() > deadline:
                raise SystemExit("read %d messages of %s [%d, %d) before the deadline"
                                 % (len(out), topic, start, end))
            m = self.consumer.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    continue
                raise SystemExit("kafka error on %s: %s" % (topic, m.error()))
            if m.offset() >= end:
                break
            out.append((m.offset(), m.timestamp()[1], m.value()))
        self.consumer.unassign()
        return out

    def close(self):
        self.consumer.close()


# ------------------------------------------------------------------------------------ workload

def rows(pks, rnd, with_dynamic=True):
    out = []
    for pk in pks:
        r = {"pk": pk, "vec": [rnd.random() for _ in range(DIM)], "title": "row-%s" % pk,
             "meta": {"i": pk, "even": pk % 2 == 0}}
        if with_dynamic:
            r["extra"] = pk * 10
        out.append(r)
    return out


def run_workload(uri, suffix):
    """The scripted workload; returns the facts the unit tests assert, operations in order."""
    from pymilvus import (Collection, CollectionSchema, DataType, FieldSchema, connections, db,
                          utility, Role)
    rnd = random.Random(42)
    connections.connect("cap", uri=uri)
    ops = []
    c1 = "cap_main_" + suffix
    db2 = "capdb_" + suffix
    c2 = "cap_vpk_" + suffix
    user = "capuser_" + suffix
    role = "caprole_" + suffix

    schema = CollectionSchema([
        FieldSchema("pk", DataType.INT64, is_primary=True, auto_id=False),
        FieldSchema("vec", DataType.FLOAT_VECTOR, dim=DIM),
        FieldSchema("title", DataType.VARCHAR, max_length=64),
        FieldSchema("meta", DataType.JSON),
    ], enable_dynamic_field=True, description="capture int64 pk")
    log("create collection %s (2 shards)" % c1)
    coll = Collection(c1, schema, using="cap", shards_num=2)
    c1_id = coll.describe()["collection_id"]
    ops.append({"op": "create_collection", "db": "default", "collection": c1, "shards": 2})

    pks = list(range(0, 20))
    res = coll.insert(rows(pks, rnd))
    assert res.insert_count == 20
    ops.append({"op": "insert", "collection": c1, "partition": "_default", "pks": pks})

    coll.delete("pk in [1, 2, 3]")
    ops.append({"op": "delete", "collection": c1, "pks": [1, 2, 3]})

    up = [4, 100]
    res = coll.upsert(rows(up, rnd))
    assert res.upsert_count == 2, res
    ops.append({"op": "upsert", "collection": c1, "partition": "_default", "pks": up})

    coll.create_partition("p1")
    ops.append({"op": "create_partition", "collection": c1, "partition": "p1"})
    p_pks = list(range(200, 205))
    res = coll.insert(rows(p_pks, rnd), partition_name="p1")
    assert res.insert_count == 5
    ops.append({"op": "insert", "collection": c1, "partition": "p1", "pks": p_pks})

    idx = {"index_type": "IVF_FLAT", "metric_type": "L2", "params": {"nlist": 4}}
    coll.create_index("vec", idx, index_name="vec_idx")
    ops.append({"op": "create_index", "collection": c1, "field": "vec", "index": "vec_idx"})

    log("load / release partition p1")
    part = coll.partition("p1")
    part.load()
    ops.append({"op": "load_partitions", "collection": c1, "partitions": ["p1"]})
    part.release()
    ops.append({"op": "release_partitions", "collection": c1, "partitions": ["p1"]})

    log("load / flush / release collection")
    coll.load()
    ops.append({"op": "load_collection", "collection": c1})
    coll.flush()
    ops.append({"op": "flush", "collections": [c1]})
    coll.release()
    ops.append({"op": "release_collection", "collection": c1})

    coll.drop_partition("p1")
    ops.append({"op": "drop_partition", "collection": c1, "partition": "p1"})

    coll.drop_index(index_name="vec_idx")
    ops.append({"op": "drop_index", "collection": c1, "index": "vec_idx"})

    log("rbac: user %s, role %s" % (user, role))
    utility.create_user(user, "Capture-pw1", using="cap")
    ops.append({"op": "create_user", "user": user})
    r = Role(role, using="cap")
    r.create()
    ops.append({"op": "create_role", "role": role})
    r.add_user(user)
    ops.append({"op": "add_user_to_role", "user": user, "role": role})
    # Grant/Revoke (OperatePrivilege) need common.security.authorizationEnabled, off on the bed.
    r.remove_user(user)
    ops.append({"op": "remove_user_from_role", "user": user, "role": role})
    r.drop()
    ops.append({"op": "drop_role", "role": role})
    utility.delete_user(user, using="cap")
    ops.append({"op": "delete_user", "user": user})

    log("database %s with collection %s" % (db2, c2))
    db.create_database(db2, using="cap")
    ops.append({"op": "create_database", "db": db2})
    connections.connect("cap2", uri=uri, db_name=db2)
    schema2 = CollectionSchema([
        FieldSchema("id", DataType.VARCHAR, is_primary=True, max_length=32),
        FieldSchema("vec", DataType.FLOAT_VECTOR, dim=DIM),
    ], description="capture varchar pk")
    coll2 = Collection(c2, schema2, using="cap2", shards_num=1)
    c2_id = coll2.describe()["collection_id"]
    ops.append({"op": "create_collection", "db": db2, "collection": c2, "shards": 1})
    vpks = ["k%d" % i for i in range(5)]
    res = coll2.insert([vpks, [[rnd.random() for _ in range(DIM)] for _ in vpks]])
    assert res.insert_count == 5
    ops.append({"op": "insert", "db": db2, "collection": c2, "partition": "_default", "pks": vpks})
    coll2.delete('id in ["k1", "k3"]')
    ops.append({"op": "delete", "db": db2, "collection": c2, "pks": ["k1", "k3"]})
    coll2.drop()
    ops.append({"op": "drop_collection", "db": db2, "collection": c2})
    db.drop_database(db2, using="cap")
    ops.append({"op": "drop_database", "db": db2})

    coll.drop()
    ops.append({"op": "drop_collection", "db": "default", "collection": c1})
    version = utility.get_server_version(using="cap")
    connections.disconnect("cap")
    connections.disconnect("cap2")
    return {
        "server_version": version,
        "suffix": suffix,
        "collections": {c1: {"db": "default", "id": c1_id, "shards": 2, "pk": "pk",
                             "pk_field_id": 100},
                        c2: {"db": db2, "id": c2_id, "shards": 1, "pk": "id",
                             "pk_field_id": 100}},
        "databases": [db2],
        "user": user,
        "role": role,
        "ops": ops,
    }


# ------------------------------------------------------------------------------------ filtering

def keep_message(payload, facts, names):
    """True for time ticks and for messages about this run's objects."""
    from pymilvus.grpc_gen import common_pb2, milvus_pb2, msg_pb2
    hdr = common_pb2.MsgHeader()
    hdr.ParseFromString(payload)
    t = hdr.base.msg_type
    ids = {c["id"] for c in facts["collections"].values()}
    dml = {MT["Insert"]: msg_pb2.InsertRequest, MT["Delete"]: msg_pb2.DeleteRequest,
           MT["CreateCollection"]: msg_pb2.CreateCollectionRequest,
           MT["DropCollection"]: msg_pb2.DropCollectionRequest,
           MT["CreatePartition"]: msg_pb2.CreatePartitionRequest,
           MT["DropPartition"]: msg_pb2.DropPartitionRequest}
    if t == MT["TimeTick"]:
        return True
    if t in dml:
        m = dml[t]()
        m.ParseFromString(payload)
        return m.collectionID in ids
    # Replicate channel: look for any of our names in the request's string fields.
    reqs = {MT["CreateDatabase"]: milvus_pb2.CreateDatabaseRequest,
            MT["DropDatabase"]: milvus_pb2.DropDatabaseRequest,
            MT["CreateIndex"]: milvus_pb2.CreateIndexRequest,
            MT["DropIndex"]: milvus_pb2.DropIndexRequest,
            MT["LoadCollection"]: milvus_pb2.LoadCollectionRequest,
            MT["ReleaseCollection"]: milvus_pb2.ReleaseCollectionRequest,
            MT["LoadPartitions"]: milvus_pb2.LoadPartitionsRequest,
            MT["ReleasePartitions"]: milvus_pb2.ReleasePartitionsRequest,
            MT["Flush"]: milvus_pb2.FlushRequest}
    if t in reqs:
        m = reqs[t]()
        m.ParseFromString(payload)
        text = str(m)
    else:
        text = payload.decode("latin-1")  # unknown/RBAC: a raw substring search is enough
    return any(n in text for n in names)


# ------------------------------------------------------------------------------------ main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(DEFAULT_OUT), help="output dir (default %(default)s)")
    ap.add_argument("--settle-ticks", type=int, default=3,
                    help="time ticks to wait for on each DML topic after the workload")
    args = ap.parse_args()

    from pymilvus.grpc_gen import common_pb2
    for name, v in MT.items():  # pymilvus 2.3.7 lacks the newest names (AlterIndex, ...)
        if name in common_pb2.MsgType.keys():
            assert common_pb2.MsgType.Value(name) == v, name

    env = bed_env()
    for k in ("SOURCE_MILVUS_URI", "KAFKA_BROKERS", "SOURCE_CHANNEL_PREFIX",
              "SOURCE_REPLICATE_CHANNEL", "SOURCE_DML_CHANNEL_NUM"):
        if not env.get(k):
            raise SystemExit("scripts/testbed.sh env has no %s; is the bed up?" % k)
    prefix = env["SOURCE_CHANNEL_PREFIX"]
    topics = ["%s-rootcoord-dml_%d" % (prefix, i) for i in range(int(env["SOURCE_DML_CHANNEL_NUM"]))]
    topics.append(env["SOURCE_REPLICATE_CHANNEL"])

    kafka = Kafka(env["KAFKA_BROKERS"])
    start = {t: kafka.high(t) for t in topics}
    log("start offsets %s" % start)

    suffix = uuid.uuid4().hex[:8]
    facts = run_workload(env["SOURCE_MILVUS_URI"], suffix)

    # Let every DML topic that got messages carry a few more ticks, so the last operation's pack
    # is closed in the corpus. A pchannel stops ticking shortly after its last collection is
    # dropped, so a shortfall here is only reported.
    after = {t: kafka.high(t) for t in topics}
    for t in topics[:-1]:
        if after[t] > start[t]:
            try:
                wait_until(lambda t=t: kafka.high(t) >= after[t] + args.settle_ticks, 10,
                           "ticks on " + t)
            except SystemExit as e:
                log("note: %s" % e)
    end = {t: kafka.high(t) for t in topics}
    log("end offsets %s" % end)

    names = [c for c in facts["collections"]] + facts["databases"] + [facts["user"], facts["role"]]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.msgs"):
        old.unlink()
    from pymilvus.grpc_gen import common_pb2 as cpb
    index = {"format": "record = int64 LE offset, int64 LE kafka timestamp ms, uint32 LE size, "
                       "payload bytes; one .msgs file per topic",
             "captured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
             "replicate_channel": topics[-1], "channels": [], "messages": []}
    total = 0
    for t in topics:
        msgs = kafka.read(t, start[t], end[t])
        kept = [m for m in msgs if keep_message(m[2], facts, names)]
        # Trim time ticks before this run's first message on a channel: they carry nothing.
        first = next((i for i, m in enumerate(kept) if not is_tick(m[2])), None)
        if first is None:
            log("%s: %d messages, none of this run" % (t, len(msgs)))
            continue
        kept = kept[max(0, first - 2):]
        fname = t + ".msgs"
        with open(out / fname, "wb") as f:
            for off, ts, payload in kept:
                f.write(struct.pack("<qqI", off, ts, len(payload)))
                f.write(payload)
                total += 20 + len(payload)
        index["channels"].append({"channel": t, "file": fname, "read_from": start[t],
                                  "read_to": end[t], "read": len(msgs), "kept": len(kept)})
        for off, _, payload in kept:
            h = cpb.MsgHeader()
            h.ParseFromString(payload)
            index["messages"].append({"channel": t, "offset": off,
                                      "msg_type": h.base.msg_type, "size": len(payload)})
        log("%s: read %d, kept %d" % (t, len(msgs), len(kept)))
    kafka.close()
    index["workload"] = facts

    # One message per line keeps the index reviewable in diffs.
    lines = json.dumps({k: v for k, v in index.items() if k != "messages"}, indent=1)
    msg_lines = ",\n".join("  " + json.dumps(m, sort_keys=True) for m in index["messages"])
    with open(out / "index.json", "w") as f:
        f.write(lines[:-2] + ',\n "messages": [\n' + msg_lines + "\n ]\n}\n")
    log("wrote %d bytes of messages and index.json to %s" % (total, out))


def is_tick(payload):
    from pymilvus.grpc_gen import common_pb2
    h = common_pb2.MsgHeader()
    h.ParseFromString(payload)
    return h.base.msg_type == MT["TimeTick"]


if __name__ == "__main__":
    main()
