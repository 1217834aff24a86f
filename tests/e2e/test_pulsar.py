"""A Pulsar-backed SOURCE (scripts/testbed.sh up --mq pulsar): what is Pulsar's own.

The pipeline tests (replication, workload, progress, capture, kill -9, broker restart and
outage) run unchanged on a Pulsar bed (scripts/test-all.sh, Pulsar stage). This module checks
what differs: checkpoints are Pulsar message ids, and `position` answers them the way the
official server does (base64 of a MsgPosition whose msgID is a serialized MessageIdData) naming
entries that exist on the broker. Skipped on a Kafka bed.
"""
import base64
import json
import urllib.request

import pytest

from cdc_server import CdcServer, wait_until
from helpers import unique_name
import workload
from test_workload import count

pytestmark = pytest.mark.bed

TIMEOUT = 120


@pytest.fixture(autouse=True)
def pulsar_only(bed_env):
    if bed_env.get("SOURCE_MQ") != "pulsar":
        pytest.skip("the bed's SOURCE runs on Kafka (scripts/testbed.sh up --mq pulsar for these)")


def varints(buf):
    """{field number: [values]} of a protobuf message's varint and bytes fields."""
    out, i = {}, 0
    while i < len(buf):
        key, i = _varint(buf, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            v, i = _varint(buf, i)
        elif wire == 2:
            n, i = _varint(buf, i)
            v, i = buf[i:i + n], i + n
        elif wire == 1:
            v, i = buf[i:i + 8], i + 8
        elif wire == 5:
            v, i = buf[i:i + 4], i + 4
        else:
            raise AssertionError("wire type %d in %r" % (wire, buf))
        out.setdefault(field, []).append(v)
    return out


def _varint(buf, i):
    shift = v = 0
    while True:
        b = buf[i]
        i += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return v, i


def admin_get(bed_env, path):
    with urllib.request.urlopen(bed_env["PULSAR_WEB_URL"] + path, timeout=30) as r:
        return r.status, r.read()


def test_position_answers_pulsar_message_ids_of_real_entries(tmp_path, bed_env, source, target):
    srv = CdcServer(tmp_path / "srv", bed_env=bed_env).start()
    try:
        name = unique_name("pulsar_pos")
        reply = srv.post("create", {"milvus_connect_param": {"uri": bed_env["TARGET_MILVUS_URI"], "connect_timeout": 10},
                                    "collection_infos": [{"name": name}]})
        assert reply["code"] == 200, reply
        task_id = reply["data"]["task_id"]
        # the collection comes after the task started: all of its rows are the task's to copy
        wait_until(lambda: "replicating" in srv.post("get", {"task_id": task_id})["data"]["task"].get("reason", ""),
                   60, what="the task to start replicating")
        src = workload.create_collection("source", name, shards=2)
        src.insert(workload.rows(list(range(500))))
        src.flush()

        def target_rows():
            from pymilvus import Collection, utility
            if not utility.has_collection(name, using="target"):
                return False
            tgt = Collection(name, using="target")
            workload.ensure_index_and_load(tgt)
            n = count(tgt, "int64")
            return n == 500 or n
        wait_until(lambda: target_rows() is True, TIMEOUT, what="500 rows on TARGET")

        positions = srv.post("position", {"task_id": task_id})["data"]["positions"]
        dml = [p for p in positions if "rootcoord-dml" in p["channel_name"]]
        assert dml, positions
        checked = 0
        for p in dml:
            pos = varints(base64.b64decode(p["msg_id"]))  # MsgPosition: 1 channel, 2 msgID, 4 timestamp
            assert pos[1][0].decode() == p["channel_name"]
            mid = varints(pos[2][0])  # MessageIdData: 1 ledger, 2 entry, 3 partition, 4 batch index
            ledger, entry = mid[1][0], mid[2][0]
            assert mid.get(3, [0])[0] == 0, mid  # Go-style: a non-partitioned topic is partition 0
            assert 4 in mid, mid                 # Go-style ids carry the batch index
            # the checkpoint is "just after" a message read: the entry it names exists on the broker
            topic = "/admin/v2/persistent/public/default/%s" % p["channel_name"]
            status, _ = admin_get(bed_env, "%s/ledger/%d/entry/%d" % (topic, ledger, entry))
            assert status == 200, (p, ledger, entry)
            checked += 1
        assert checked == len(dml)
        stats = json.loads(admin_get(bed_env, "/admin/v2/persistent/public/default/%s/stats" % dml[0]["channel_name"])[1])
        # our readers are non-durable subscriptions (nothing retained for us, nothing left behind)
        ours = {n: s for n, s in stats.get("subscriptions", {}).items() if n.startswith("milvus-cdc")}
        assert ours, stats.get("subscriptions")
        assert all(s.get("isDurable") is False for s in ours.values()), ours
        src.drop()
    finally:
        srv.stop()
