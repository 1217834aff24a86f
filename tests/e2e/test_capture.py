"""Source capture end to end: `milvus-cdc inspect` follows the bed's SOURCE (etcd
metadata and Kafka log) and prints every change a workload makes, decoded, in order."""
import json
import signal
import subprocess
import threading
import time

import pytest
from pymilvus import Partition, db, utility

from cdc_server import BINARY, CdcServer, wait_until
from helpers import unique_name
import workload

pytestmark = pytest.mark.bed


class Inspect:
    """Runs `milvus-cdc inspect` in the background and collects its JSON lines."""

    def __init__(self, config_path, *args):
        self.proc = subprocess.Popen([str(BINARY), "inspect", "--config", str(config_path), *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines = []
        self.stderr = []
        self._out = threading.Thread(target=self._read, args=(self.proc.stdout, self.lines), daemon=True)
        self._err = threading.Thread(target=self._read, args=(self.proc.stderr, self.stderr), daemon=True)
        self._out.start()
        self._err.start()
        wait_until(lambda: any("reading" in l for l in self.stderr) or self.proc.poll() is not None, 60,
                   what="inspect to start")
        assert self.proc.poll() is None, "".join(self.stderr)

    @staticmethod
    def _read(stream, sink):
        for line in stream:
            sink.append(line)

    def events(self):
        return [json.loads(l) for l in list(self.lines) if l.strip()]

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)
        self._out.join(10)
        return self.proc.returncode


@pytest.fixture
def cdc_config(tmp_path, bed_env):
    return CdcServer(tmp_path / "inspect", bed_env=bed_env).config_path


def of(events, collection, kind=None, source=None):
    return [e for e in events if e.get("collection") == collection and (kind is None or e["type"] == kind)
            and (source is None or e["source"] == source)]


def test_inspect_decodes_every_operation_in_order(cdc_config, source):
    name = unique_name("cap")
    ins = Inspect(cdc_config, "--from", "latest")
    try:
        coll = workload.create_collection("source", name, shards=2)
        coll.insert(workload.rows(list(range(0, 300))))
        coll.delete("pk in [%s]" % ",".join(str(i) for i in range(10)))
        coll.upsert(workload.rows(list(range(10, 15)), tag="v2"))
        coll.create_partition("p1")
        Partition(coll, "p1").insert(workload.rows(list(range(1000, 1050))))
        workload.ensure_index_and_load(coll)
        coll.flush()
        coll.release()
        coll.drop_partition("p1")
        coll.drop()
        wait_until(lambda: len(of(ins.events(), name, "DropCollection", "dml")) >= 2, 60,
                   what="the DropCollection messages of both shards")
    finally:
        assert ins.stop() == 0, "".join(ins.stderr)
    ev = ins.events()
    mine = of(ev, name)
    kinds = [e["type"] for e in mine]

    created = of(ev, name, "CreateCollection", "etcd")
    assert len(created) == 1
    assert created[0]["fields"] == ["pk", "vec", "title", "meta"]
    assert created[0]["shards"] == 2 and created[0]["dynamic_field"] is True

    inserts = of(ev, name, "Insert", "dml")
    assert sum(e["rows"] for e in inserts) == 300 + 5 + 50
    deletes = of(ev, name, "Delete", "dml")
    assert sum(e["rows"] for e in deletes) == 10 + 5
    sampled = {pk for e in deletes for pk in e["pks_sample"]}
    assert sampled <= set(range(15)) and len(sampled) == 15  # each delete has <= 10 pks, all sampled
    assert {e.get("partition") for e in inserts} == {"_default", "p1"}
    assert any(e["type"] == "CreatePartition" and e.get("partition") == "p1" for e in mine)
    for kind in ("CreateIndex", "LoadCollection", "ReleaseCollection"):
        assert of(ev, name, kind, "replicate"), f"{kind} missing from the replicate channel: {kinds}"
    assert any(e["type"] == "Flush" and name in e.get("collections", [e.get("collection")])
               for e in ev if e["source"] == "replicate")
    assert len(of(ev, name, "DropPartition", "dml")) == 2  # one per shard
    assert len(of(ev, name, "DropCollection", "dml")) == 2

    # Source order per shard: positions only grow, and each delete follows the insert of its rows.
    by_channel = {}
    for e in mine:
        if e["source"] != "dml":
            continue
        by_channel.setdefault(e["position"]["channel"], []).append(e["position"]["offset"])
    for channel, offsets in by_channel.items():
        assert offsets == sorted(offsets), channel
    first_delete = min(i for i, e in enumerate(mine) if e["type"] == "Delete")
    first_insert = min(i for i, e in enumerate(mine) if e["type"] == "Insert")
    assert first_insert < first_delete
    assert kinds.index("CreateIndex") < kinds.index("LoadCollection") < kinds.index("ReleaseCollection")
    assert max(i for i, k in enumerate(kinds) if k == "Insert") < kinds.index("DropCollection")


def test_inspect_follows_other_databases_and_varchar_keys(cdc_config, source):
    dbname = unique_name("capdb")
    name = unique_name("vc")
    ins = Inspect(cdc_config, "--from", "latest")
    try:
        db.create_database(dbname, using="source")
        workload.use_db("source", dbname)
        coll = workload.create_collection("source", name, pk_type="varchar", shards=1)
        keys = [f"k{i}" for i in range(40)]
        coll.insert(workload.rows(keys))
        coll.delete('pk in ["k1", "k2", "k3"]')
        coll.drop()
        workload.use_db("source", "default")
        db.drop_database(dbname, using="source")
        wait_until(lambda: any(e["type"] == "DropDatabase" and e.get("db") == dbname for e in ins.events())
                   and of(ins.events(), name, "DropCollection", "dml"), 60, what="DropCollection and DropDatabase")
    finally:
        workload.use_db("source", "default")
        assert ins.stop() == 0, "".join(ins.stderr)
    ev = ins.events()
    assert any(e["type"] == "CreateDatabase" and e.get("db") == dbname for e in ev)
    kinds = [e["type"] for e in ev if e.get("db") == dbname]
    # The DropCollection broadcast is asynchronous on the source: its timestamp may be later
    # than the DropDatabase that followed it (docs/milvus-notes.md).
    assert kinds.index("CreateDatabase") < kinds.index("Insert") < kinds.index("DropCollection")
    assert kinds.index("Insert") < kinds.index("DropDatabase")
    inserts = of(ev, name, "Insert", "dml")
    assert all(e["db"] == dbname for e in of(ev, name))
    assert sum(e["rows"] for e in inserts) == 40
    assert set(inserts[0]["pks_sample"]) <= set(keys)
    deletes = of(ev, name, "Delete", "dml")
    assert sorted(pk for e in deletes for pk in e["pks_sample"]) == ["k1", "k2", "k3"]


def test_inspect_from_earliest_replays_an_existing_collection(cdc_config, source):
    name = unique_name("early")
    coll = workload.create_collection("source", name, shards=1)
    coll.insert(workload.rows(list(range(25))))
    coll.flush()
    ins = Inspect(cdc_config, "--from", "earliest", "--collection", name)
    try:
        wait_until(lambda: sum(e["rows"] for e in of(ins.events(), name, "Insert", "dml")) >= 25, 60,
                   what="the 25 rows written before inspect started")
    finally:
        assert ins.stop() == 0, "".join(ins.stderr)
        coll.drop()
    ev = ins.events()
    assert {e.get("collection") for e in ev} <= {name, None}
    assert sum(e["rows"] for e in of(ev, name, "Insert", "dml")) == 25


def test_inspect_rejects_bad_arguments(cdc_config):
    res = subprocess.run([str(BINARY), "inspect", "--config", str(cdc_config), "--from", "yesterday"],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode != 0 and "--from" in res.stderr
    res = subprocess.run([str(BINARY), "inspect"], capture_output=True, text=True, timeout=30)
    assert res.returncode != 0 and "--config is required" in res.stderr


def test_scripted_workload_is_decoded_completely(cdc_config, source):
    """Two databases, three collections (int64 and varchar keys, partitions), 50 000 rows,
    deletes, upserts, index and load operations, drops: every operation is in the decoded
    stream, per shard in source order, with the same row counts and primary keys."""
    db2 = unique_name("wdb")
    names = {"a": unique_name("wa"), "b": unique_name("wb"), "c": unique_name("wc")}
    written = {n: [] for n in names.values()}
    deleted = {n: [] for n in names.values()}
    ins = Inspect(cdc_config, "--from", "latest", "--all-pks")
    try:
        db.create_database(db2, using="source")
        a = workload.create_collection("source", names["a"], shards=2)
        b = workload.create_collection("source", names["b"], pk_type="varchar", shards=2)
        workload.use_db("source", db2)
        c = workload.create_collection("source", names["c"], shards=1)
        c.create_partition("hot")
        workload.use_db("source", "default")
        for start in range(0, 20000, 5000):
            pks = list(range(start, start + 5000))
            a.insert(workload.rows(pks))
            written[names["a"]] += pks
        for start in range(0, 20000, 5000):
            keys = [f"key-{i}" for i in range(start, start + 5000)]
            b.insert(workload.rows(keys))
            written[names["b"]] += keys
        workload.use_db("source", db2)
        for start in range(0, 10000, 5000):
            pks = list(range(start, start + 5000))
            target = Partition(c, "hot") if start else c
            target.insert(workload.rows(pks))
            written[names["c"]] += pks
        dels = list(range(0, 10000, 7))
        c.delete("pk in [%s]" % ",".join(map(str, dels)))
        deleted[names["c"]] += dels
        workload.ensure_index_and_load(c)
        c.release()
        c.drop_partition("hot")
        c.drop()
        workload.use_db("source", "default")
        dels = list(range(0, 20000, 3))
        a.delete("pk in [%s]" % ",".join(map(str, dels)))
        deleted[names["a"]] += dels
        ups = list(range(1, 1001))
        a.upsert(workload.rows(ups, tag="v2"))
        written[names["a"]] += ups
        deleted[names["a"]] += ups  # an upsert is written as an insert and a delete of the same keys
        bdel = [f"key-{i}" for i in range(0, 20000, 11)]
        b.delete("pk in [%s]" % ",".join('"%s"' % k for k in bdel))
        deleted[names["b"]] += bdel
        workload.ensure_index_and_load(a)
        a.release()
        a.drop()
        b.drop()
        db.drop_database(db2, using="source")
        wait_until(lambda: all(len(of(ins.events(), n, "DropCollection", "dml")) >= s
                               for n, s in ((names["a"], 2), (names["b"], 2), (names["c"], 1))),
                   120, what="every DropCollection")
    finally:
        workload.use_db("source", "default")
        assert ins.stop() == 0, "".join(ins.stderr)
    ev = ins.events()
    for n in names.values():
        inserted = [pk for e in of(ev, n, "Insert", "dml") for pk in e["pks"]]
        assert sorted(inserted, key=str) == sorted(written[n], key=str), n
        removed = [pk for e in of(ev, n, "Delete", "dml") for pk in e["pks"]]
        assert sorted(removed, key=str) == sorted(deleted[n], key=str), n
        assert sum(e["rows"] for e in of(ev, n, "Insert", "dml")) == len(written[n])
        offsets = {}
        for e in of(ev, n):
            if e["source"] == "dml":
                offsets.setdefault(e["position"]["channel"], []).append(e["position"]["offset"])
        assert all(o == sorted(o) for o in offsets.values()), n
    assert sum(len(v) for v in written.values()) >= 50000
    assert all(e["db"] == db2 for e in of(ev, names["c"]))
    kinds = {(e.get("collection"), e["type"]) for e in ev}
    for n in names.values():
        assert (n, "CreateCollection") in kinds and (n, "DropCollection") in kinds
    assert (names["c"], "CreatePartition") in kinds and (names["c"], "DropPartition") in kinds
    for n in (names["a"], names["c"]):
        for kind in ("CreateIndex", "LoadCollection", "ReleaseCollection"):
            assert (n, kind) in kinds, (n, kind)
    assert any(e["type"] == "CreateDatabase" and e.get("db") == db2 for e in ev)
    assert any(e["type"] == "DropDatabase" and e.get("db") == db2 for e in ev)
