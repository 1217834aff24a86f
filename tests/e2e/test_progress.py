"""What an operator watches: `get` shows every channel's checkpoint and lag, the lag gauge
grows while a task is paused and is there right after a restart, and pause answers fast
and stops writes."""
import time

import pytest
from pymilvus import Collection

from cdc_server import CdcServer, wait_until
from helpers import PAUSED_READ, unique_name
from test_replication import TIMEOUT, loaded_target, target_has, wait_rows_equal
import workload

pytestmark = pytest.mark.bed


def lag_series(srv, task_id):
    """{channel: lag ms} from /cdc/metrics for one task."""
    out = {}
    for line in srv.metrics().splitlines():
        if line.startswith("milvus_cdc_task_lag_ms{") and f'task_id="{task_id}"' in line:
            channel = line.split('channel="', 1)[1].split('"', 1)[0]
            out[channel] = float(line.rsplit(" ", 1)[1])
    return out


def dml_channels(task):
    return [c for c in task["channels"] if c["kind"] == "dml"]


def test_get_shows_channel_progress_and_lag_survives_pause_and_restart(tmp_path, bed_env, source, target):
    name = unique_name("prog")
    src = workload.create_collection("source", name, shards=2)
    srv = CdcServer(tmp_path / "prog", bed_env=bed_env).start()
    try:
        reply = srv.post("create", {"milvus_connect_param": {"uri": bed_env["TARGET_MILVUS_URI"]},
                                    "collection_infos": [{"name": name}]})
        assert reply["code"] == 200, reply
        task_id = reply["data"]["task_id"]
        wait_until(lambda: target_has(name), TIMEOUT, what=f"{name} on TARGET")
        src.insert(workload.rows(list(range(200))))
        workload.ensure_index_and_load(src)
        tgt = loaded_target(name)
        assert len(wait_rows_equal(src, tgt)) == 200

        # Running and caught up: both shards' channels and the replicate channel, small lag.
        def caught_up():
            task = srv.post("get", {"task_id": task_id})["data"]["task"]
            dml = dml_channels(task)
            ok = len(dml) == 2 and all(c["lag_ms"] is not None and c["lag_ms"] < 5000 for c in dml)
            return task if ok else None
        task = wait_until(caught_up, TIMEOUT, what="two DML channels with a lag under 5 s")
        assert [c for c in task["channels"] if c["kind"] == "replicate"], task["channels"]
        for c in dml_channels(task):
            assert c["checkpoint"]["offset"] > 0 and c["checkpoint"]["time"] > 0, c
        assert set(lag_series(srv, task_id)) == {c["channel_name"] for c in dml_channels(task)}

        # Paused: pause answers within a second, nothing more reaches TARGET, lag grows.
        t0 = time.monotonic()
        assert srv.post("pause", {"task_id": task_id})["code"] == 200
        assert time.monotonic() - t0 < 1.0, "pause took more than a second"
        src.insert(workload.rows(list(range(200, 300))))
        first = lag_series(srv, task_id)
        time.sleep(3)
        second = lag_series(srv, task_id)
        assert first and all(second[ch] >= first[ch] + 2000 for ch in first), (first, second)
        assert len(workload.all_rows(tgt, consistency=PAUSED_READ)) == 200, "a paused task wrote to TARGET"

        # A restart: the paused task's gauges are there at once, from its stored checkpoints.
        srv.restart()
        after = lag_series(srv, task_id)
        assert set(after) == set(first) and all(after[ch] > second[ch] for ch in first), (second, after)
        task = srv.post("get", {"task_id": task_id})["data"]["task"]
        assert task["state"] == "Paused" and len(dml_channels(task)) == 2

        # Resumed: the rows written while paused arrive, and the lag falls back.
        assert srv.post("resume", {"task_id": task_id})["code"] == 200
        assert len(wait_rows_equal(src, tgt)) == 300
        wait_until(caught_up, TIMEOUT, what="the lag to fall back under 5 s")
    finally:
        srv.stop()
        src.drop()
        if target_has(name):
            Collection(name, using="target").drop()
