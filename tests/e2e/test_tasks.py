"""Replication tasks with their own scope, each on a server of its own (no other task
writes to TARGET meanwhile): the start position, schema clashes, renames, and a target
that refuses plain writes."""
import contextlib

import pytest
from pymilvus import Collection, utility

from cdc_server import CdcServer, wait_until
from helpers import unique_name
from test_replication import TIMEOUT, loaded_target, target_has, wait_rows_equal
import workload

pytestmark = pytest.mark.bed


@contextlib.contextmanager
def one_collection_task(tmp_path, bed_env, name):
    """A server of its own whose one task copies `name` to TARGET; entered once TARGET has it."""
    srv = CdcServer(tmp_path / name, bed_env=bed_env).start()
    try:
        reply = srv.post("create", {"milvus_connect_param": {"uri": bed_env["TARGET_MILVUS_URI"]},
                                    "collection_infos": [{"name": name}]})
        assert reply["code"] == 200, reply
        wait_until(lambda: target_has(name), TIMEOUT, what=f"{name} created on TARGET at task start")
        yield srv
    finally:
        srv.stop()


def test_existing_collection_is_created_when_a_task_starts(tmp_path, bed_env, source, target):
    name = unique_name("pre")
    src = workload.create_collection("source", name, shards=1)
    src.insert(workload.rows(list(range(10))))
    try:
        with one_collection_task(tmp_path, bed_env, name):
            tgt = Collection(name, using="target")
            assert workload.field_summary(tgt) == workload.field_summary(src)
            # Copying starts at "latest": rows written from now on arrive, older ones do not.
            src.insert(workload.rows(list(range(100, 120))))
            workload.ensure_index_and_load(src)
            tgt = loaded_target(name)
            wait_until(lambda: set(workload.all_rows(tgt)) == set(range(100, 120)), TIMEOUT,
                       what="the 20 rows written after the task started")
    finally:
        src.drop()


def test_different_schema_on_target_pauses_the_task(tmp_path, bed_env, source, target):
    name = unique_name("clash")
    workload.create_collection("target", name, shards=1, dim=16)  # same name, other dim
    src = workload.create_collection("source", name, shards=1, dim=8)
    srv = CdcServer(tmp_path / "clash", bed_env=bed_env).start()
    try:
        reply = srv.post("create", {"milvus_connect_param": {"uri": bed_env["TARGET_MILVUS_URI"]},
                                    "collection_infos": [{"name": name}]})
        assert reply["code"] == 200, reply
        task_id = reply["data"]["task_id"]
        got = wait_until(lambda: (lambda t: t if t["state"] == "Paused" else None)(
            srv.post("get", {"task_id": task_id})["data"]["task"]), TIMEOUT, what="the task to pause")
        assert "different schema" in got["reason"] and "dim=8" in got["reason"] and "dim=16" in got["reason"]
    finally:
        srv.stop()
        src.drop()
        Collection(name, using="target").drop()


def test_name_mapping_renames_on_the_target(tmp_path, bed_env, source, target):
    name = unique_name("orig")
    copy = name + "_copy"
    src = workload.create_collection("source", name, shards=1)
    srv = CdcServer(tmp_path / "map", bed_env=bed_env).start()
    try:
        reply = srv.post("create", {
            "milvus_connect_param": {"uri": bed_env["TARGET_MILVUS_URI"]},
            "collection_infos": [{"name": name}],
            "name_mapping": [{"source_db": "default", "target_db": "default", "collection_mapping": {name: copy}}]})
        assert reply["code"] == 200, reply
        wait_until(lambda: target_has(copy), TIMEOUT, what=f"{copy} on TARGET")
        src.insert(workload.rows(list(range(30))))
        workload.ensure_index_and_load(src)
        tgt = loaded_target(copy)
        assert len(wait_rows_equal(src, tgt)) == 30
        assert not target_has(name)
    finally:
        srv.stop()
        src.drop()
        if target_has(copy):
            Collection(copy, using="target").drop()


def test_target_refusing_plain_writes_pauses_with_the_fix(tmp_path, bed_env, source, replica):
    """REPLICA runs with common.ttMsgEnabled=false: it refuses plain inserts, which is what a task
    told to use them (`write_mode: "api"`) meets there."""
    name = unique_name("ro")
    src = workload.create_collection("source", name, shards=1)
    srv = CdcServer(tmp_path / "ro", bed_env=bed_env).start()
    try:
        reply = srv.post("create", {"milvus_connect_param": {"uri": bed_env["REPLICA_MILVUS_URI"], "write_mode": "api"},
                                    "collection_infos": [{"name": name}]})
        assert reply["code"] == 200, reply
        task_id = reply["data"]["task_id"]
        wait_until(lambda: utility.has_collection(name, using="replica"), TIMEOUT, what=f"{name} on REPLICA")
        src.insert(workload.rows(list(range(5))))
        got = wait_until(lambda: (lambda t: t if t["state"] == "Paused" else None)(
            srv.post("get", {"task_id": task_id})["data"]["task"]), TIMEOUT, what="the task to pause")
        assert "common.ttMsgEnabled=false" in got["reason"] and "ttMsgEnabled: true" in got["reason"]
    finally:
        srv.stop()
        src.drop()
        if utility.has_collection(name, using="replica"):
            utility.drop_collection(name, using="replica")


def test_use_start_position_replays_rows_written_before_the_task(tmp_path, bed_env, source, target):
    name = unique_name("early")
    src = workload.create_collection("source", name, shards=2)
    src.insert(workload.rows(list(range(25))))
    src.delete("pk in [3, 4]")
    srv = CdcServer(tmp_path / "early", bed_env=bed_env).start()
    try:
        reply = srv.post("create", {"milvus_connect_param": {"uri": bed_env["TARGET_MILVUS_URI"]},
                                    "collection_infos": [{"name": name, "use_start_position": True}]})
        assert reply["code"] == 200, reply
        workload.ensure_index_and_load(src)
        tgt = loaded_target(name)
        rows = wait_rows_equal(src, tgt)
        assert sorted(rows) == [i for i in range(25) if i not in (3, 4)]
    finally:
        srv.stop()
        src.drop()
        if target_has(name):
            Collection(name, using="target").drop()


def test_collection_loaded_before_the_task_is_loaded_on_the_target(tmp_path, bed_env, source, target):
    name = unique_name("preload")
    src = workload.create_collection("source", name, shards=1)
    src.insert(workload.rows(list(range(10))))
    workload.ensure_index_and_load(src)  # index and load before any task exists
    try:
        with one_collection_task(tmp_path, bed_env, name):
            wait_until(lambda: str(utility.load_state(name, using="target")).endswith("Loaded"), TIMEOUT,
                       what=f"{name} loaded on TARGET, as on SOURCE")
            tgt = Collection(name, using="target")
            assert [i.params for i in tgt.indexes] == [i.params for i in src.indexes]
            src.insert(workload.rows(list(range(100, 110))))
            wait_until(lambda: len(workload.all_rows(tgt)) == 10, TIMEOUT, what="rows written after the start")
    finally:
        src.drop()
        if target_has(name):
            Collection(name, using="target").drop()
