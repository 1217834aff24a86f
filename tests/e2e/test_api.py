"""The /cdc task API end to end: the real binary, a real SQLite store, and the bed's
TARGET Milvus as the connectivity check's peer. Every request type, every validation
rule, restarts, bad input and concurrency."""
import json
import re
import signal
import threading

import pytest

from cdc_server import CdcServer, wait_until

pytestmark = pytest.mark.bed


@pytest.fixture
def target_uri(bed_env):
    return bed_env["TARGET_MILVUS_URI"]


@pytest.fixture
def server(tmp_path, bed_env):
    srv = CdcServer(tmp_path / "cdc", bed_env=bed_env).start()
    yield srv
    srv.stop()


def create_body(target_uri, name="*", **extra):
    body = {"milvus_connect_param": {"uri": target_uri, "token": "root:Milvus", "connect_timeout": 10},
            "collection_infos": [{"name": name}]}
    body.update(extra)
    return body


def ok_data(reply):
    assert reply["code"] == 200, reply
    assert "message" not in reply, reply
    return reply.get("data")


def error(reply, code=400):
    assert reply["code"] == code, reply
    assert "data" not in reply, reply
    return reply["message"]


def get_task(server, task_id):
    data = ok_data(server.post("get", {"task_id": task_id}))
    assert data["task"] == data["Task"]
    return data["task"]


# -- the happy path ---------------------------------------------------------------------

def test_create_get_list_pause_resume_delete(server, target_uri):
    task_id = ok_data(server.post("create", create_body(target_uri)))["task_id"]
    assert re.fullmatch(r"[0-9a-f]{32}", task_id)

    task = get_task(server, task_id)
    assert task["task_id"] == task_id
    assert task["state"] == "Running"
    assert task["milvus_connect_param"]["uri"] == target_uri
    assert task["milvus_connect_param"]["connect_timeout"] == 10
    assert task["collection_infos"] == [{"name": "*", "positions": None, "use_start_position": False}]
    assert "token" not in json.dumps(task)

    tasks = ok_data(server.post("list"))["tasks"]
    assert [t["task_id"] for t in tasks] == [task_id]

    assert server.post("pause", {"task_id": task_id}) == {"code": 200}
    task = get_task(server, task_id)
    assert task["state"] == "Paused"
    assert task["reason"] == "manually pause through http interface"
    assert "the task has paused, task_id: " + task_id in error(server.post("pause", {"task_id": task_id}))

    assert server.post("resume", {"task_id": task_id}) == {"code": 200}
    assert get_task(server, task_id)["state"] == "Running"
    assert "the task has running, task_id: " + task_id in error(server.post("resume", {"task_id": task_id}))

    positions = ok_data(server.post("position", {"task_id": task_id}))
    assert set(positions) == {"positions", "op_positions", "target_positions"}

    assert server.post("delete", {"task_id": task_id}) == {"code": 200}
    assert "not found: [" + task_id + "]" in error(server.post("get", {"task_id": task_id}))
    assert "not found the task, task_id: " + task_id in error(server.post("delete", {"task_id": task_id}))
    assert server.post("delete", {"task_id": task_id, "ignore_not_found": True}) == {"code": 200}
    assert ok_data(server.post("list"))["tasks"] == []


def test_legacy_connect_fields_are_echoed_without_credentials(server, target_uri):
    host, port = target_uri.split("://")[1].rsplit(":", 1)
    body = {"milvus_connect_param": {"host": host, "port": int(port), "username": "root",
                                     "password": "Milvus-secret-pw", "enable_tls": False},
            "db_collections": {"*": [{"name": "*"}]}, "disable_auto_start": True,
            "extra_info": {"enable_user_role": True}}
    task_id = ok_data(server.post("create", body))["task_id"]
    task = get_task(server, task_id)
    mc = task["milvus_connect_param"]
    assert (mc["host"], mc["port"], mc["uri"]) == (host, int(port), "")
    assert "username" not in mc and "password" not in mc
    assert task["db_collections"] == {"*": [{"name": "*", "positions": None, "use_start_position": False}]}
    assert task["extra_info"] == {"enable_user_role": True}
    listed = ok_data(server.post("list"))["tasks"]
    assert "Milvus-secret-pw" not in json.dumps(listed)
    assert "Milvus-secret-pw" not in server.log()
    assert b"Milvus-secret-pw" not in server.db_path.read_bytes()


def test_client_task_id_is_idempotent(server, target_uri):
    body = create_body(target_uri, "orders", task_id="my-task-1")
    assert ok_data(server.post("create", body)) == {"task_id": "my-task-1"}
    assert ok_data(server.post("create", body)) == {"task_id": "my-task-1"}
    other = create_body(target_uri, "customers", task_id="my-task-1")
    assert "already exists with a different request" in error(server.post("create", other))
    assert len(ok_data(server.post("list"))["tasks"]) == 1


def test_unreachable_target_is_refused_and_nothing_stored(server):
    body = {"milvus_connect_param": {"uri": "http://127.0.0.1:1", "connect_timeout": 2},
            "collection_infos": [{"name": "*"}]}
    message = error(server.post("create", body), 500)
    assert "fail to connect the milvus" in message
    assert "127.0.0.1:1" in message
    assert ok_data(server.post("list"))["tasks"] == []


def test_bad_tls_files_are_named(server, target_uri):
    body = create_body(target_uri)
    body["milvus_connect_param"]["dial_config"] = {"ca_pem_path": "/nonexistent/ca.pem",
                                                   "client_pem_path": "/nonexistent/c.pem",
                                                   "client_key_path": "/nonexistent/c.key"}
    message = error(server.post("create", body), 500)
    assert "fail to connect the milvus" in message and "ca.pem" in message


def test_overlapping_scopes_on_one_target(server, target_uri):
    ok_data(server.post("create", create_body(target_uri, "orders")))
    assert "the collection name is duplicate with existing task, [default.orders]" in error(
        server.post("create", create_body(target_uri, "orders")))
    # A wildcard created later skips the collection the first task owns.
    wildcard = ok_data(server.post("create", create_body(target_uri, "*")))["task_id"]
    assert get_task(server, wildcard)["state"] == "Running"
    # Once default.* exists, a new named collection in default is a duplicate.
    assert "duplicate" in error(server.post("create", create_body(target_uri, "customers")))
    body = {"milvus_connect_param": {"uri": target_uri}, "db_collections": {"*": [{"name": "*"}]},
            "extra_info": {"enable_user_role": True}}
    ok_data(server.post("create", body))
    body2 = {"milvus_connect_param": {"uri": target_uri}, "db_collections": {"*": [{"name": "*"}]}}
    assert "duplicate" in error(server.post("create", body2))


def test_name_mapping_must_be_inside_scope(server, target_uri):
    body = create_body(target_uri, "orders",
                       name_mapping=[{"source_db": "other", "target_db": "x", "collection_mapping": {}}])
    assert "the collection name in the name mapping is not in the collection info" in error(
        server.post("create", body))
    body["name_mapping"] = [{"source_db": "default", "target_db": "copy",
                             "collection_mapping": {"orders": "orders_copy"}}]
    task_id = ok_data(server.post("create", body))["task_id"]
    assert get_task(server, task_id)["name_mapping"] == body["name_mapping"]


def test_task_limit(tmp_path, target_uri, bed_env):
    srv = CdcServer(tmp_path / "cdc", {"maxTaskNum": 2}, bed_env=bed_env).start()
    try:
        ok_data(srv.post("create", create_body(target_uri, "a")))
        ok_data(srv.post("create", create_body(target_uri, "b")))
        assert "the task num has reach the limit, 2" in error(srv.post("create", create_body(target_uri, "c")), 500)
    finally:
        srv.stop()


# -- validation: every rule, its exact text ---------------------------------------------

@pytest.mark.parametrize("data,expected", [
    ({"collection_infos": [{"name": "*"}]}, "the downstream address is empty"),
    ({"milvus_connect_param": {"uri": "http://a:1"}, "kafka_connect_param": {"address": "k:9092"},
      "collection_infos": [{"name": "*"}]}, "don't support milvus and kafka at the same time now"),
    ({"milvus_connect_param": {"port": 19530}, "collection_infos": [{"name": "*"}]}, "the milvus host is empty"),
    ({"milvus_connect_param": {"host": "h", "port": 0}, "collection_infos": [{"name": "*"}]},
     "the milvus port is less or equal zero"),
    ({"milvus_connect_param": {"uri": "http://h:1", "username": "u"}, "collection_infos": [{"name": "*"}]},
     "cannot set only one of the milvus username and password"),
    ({"milvus_connect_param": {"uri": "http://h:1", "connect_timeout": -1}, "collection_infos": [{"name": "*"}]},
     "the milvus connect timeout is less zero"),
    ({"kafka_connect_param": {"address": "k:9092"}, "collection_infos": [{"name": "*"}]}, "the kafka topic is empty"),
    ({"milvus_connect_param": {"uri": "http://h:1"}, "buffer_config": {"period": -1},
      "collection_infos": [{"name": "*"}]}, "the cache period is less zero"),
    ({"milvus_connect_param": {"uri": "http://h:1"}, "buffer_config": {"size": -1},
      "collection_infos": [{"name": "*"}]}, "the cache size is less zero"),
    ({"milvus_connect_param": {"uri": "http://h:1"}}, "the collection info is empty"),
    ({"milvus_connect_param": {"uri": "http://h:1"}, "collection_infos": [{"name": "a"}, {"name": "a"}]},
     "there are duplicate collection names in the list of database default"),
    ({"milvus_connect_param": {"uri": "http://h:1"}, "db_collections": {"d": [{"name": "*"}, {"name": "b"}]}},
     "`*` already covers every collection, so these names are redundant"),
    ({"milvus_connect_param": {"uri": "http://h:1"}, "collection_infos": [{"name": "a"}],
      "db_collections": {"d": [{"name": "*"}]}}, "the collection info and db collection info should be only one"),
    ({"milvus_connect_param": {"uri": "http://h:1"}, "db_collections": {"d" * 300: [{"name": "*"}]}},
     "the db name length exceeds 256 characters, " + "d" * 300),
    ({"milvus_connect_param": {"uri": "http://h:1"}, "db_collections": {"d": []}}, "empty collection info"),
    ({"milvus_connect_param": {"uri": "http://h:1"}, "collection_infos": [{"name": "*", "positions": {"a_1v0": "x"}}]},
     "the collection name is `*`, the positions should be empty"),
    ({"milvus_connect_param": {"uri": "http://h:1"}, "collection_infos": [{"name": "c", "positions": {"dml_1": "x"}}]},
     "the position channel name is not virtual channel, dml_1"),
    ({"milvus_connect_param": {"uri": "http://h:1"}, "collection_infos": [{"name": ""}]},
     "there is a collection name that is empty. "),
    ({"milvus_connect_param": {"uri": "http://h:1"}, "collection_infos": [{"name": "c" * 257}]},
     "there are some collection names whose length exceeds 256 characters, [" + "c" * 257 + "]"),
    ({"milvus_connect_param": {"uri": "http://h:1"}, "collection_infos": [{"name": "*"}],
      "rpc_channel_info": {"name": "other-replicate"}},
     "the rpc channel is invalid, the channel name should be the same as the source config"),
])
def test_create_validation(server, data, expected):
    message = error(server.post("create", data))
    assert message.startswith("fail to handle the create request, error: ")
    assert expected in message


@pytest.mark.parametrize("data,field", [
    ({"milvus_connect_param": {"host": "h", "port": "19530"}}, "'milvus_connect_param.port' expected type 'int', got 'string'"),
    ({"milvus_connect_param": {"uri": 5}}, "'milvus_connect_param.uri' expected type 'string', got 'int'"),
    ({"collection_infos": {"name": "*"}}, "'collection_infos' expected type 'array', got 'object'"),
    ({"disable_auto_start": "yes"}, "'disable_auto_start' expected type 'bool', got 'string'"),
    ({"milvus_connect_param": "http://h:1"}, "'milvus_connect_param' expected type 'object', got 'string'"),
])
def test_create_wrong_types_name_the_field(server, data, field):
    message = error(server.post("create", data))
    assert message.startswith("fail to decode the create request, error: ")
    assert field in message


def test_fractional_numbers_are_truncated(server, target_uri):
    body = create_body(target_uri)
    body["milvus_connect_param"]["connect_timeout"] = 7.9
    task_id = ok_data(server.post("create", body))["task_id"]
    assert get_task(server, task_id)["milvus_connect_param"]["connect_timeout"] == 7


def test_request_level_errors(server):
    status, text = server.raw("GET", "/cdc")
    assert status == 200 and json.loads(text) == {"code": 405, "message": "only support the POST method"}
    for body, expected in [
        ("", "the request body is empty"),
        ("{not json", "fail to unmarshal the request, error: "),
        ("[1, 2]", "the body must be a JSON object"),
        ('{"request_type": 7}', "'request_type' expected type 'string', got 'int'"),
        ('{"request_type": "get", "request_data": []}', "'request_data' expected type 'object', got 'array'"),
        ('{"request_type": "explode"}', "invalid 'request_type' param, can be set [backfill create delete get list maintenance pause position resume skip verify]"),
        ('{"request_type": "get", "request_data": {"task_id": 5}}', "fail to decode the get request, error: 'task_id' expected type 'string'"),
    ]:
        status, text = server.raw("POST", "/cdc", body)
        reply = json.loads(text)
        assert status == 200 and reply["code"] == 400, (body, reply)
        assert expected in reply["message"], (body, reply)
        assert "data" not in reply
    for request_type in ("get", "pause", "resume", "delete", "position"):
        assert "task_id is empty" in error(server.post(request_type, {}))
    assert "not found the task, task_id: nope" in error(server.post("pause", {"task_id": "nope"}))
    assert "not found the task, task_id: nope" in error(server.post("resume", {"task_id": "nope"}))
    status, _ = server.raw("POST", "/cdc/")
    assert status == 404


def test_oversized_body_is_refused_and_server_stays_up(server, target_uri):
    ok_data(server.post("create", create_body(target_uri, "keep")))
    big = json.dumps({"request_type": "list", "request_data": {"pad": "x" * (5 << 20)}})
    status, text = server.raw("POST", "/cdc", big)
    reply = json.loads(text)
    assert reply["code"] == 400 and "too large" in reply["message"] and "4194304" in reply["message"]
    assert "data" not in reply
    assert server.alive()
    assert len(ok_data(server.post("list"))["tasks"]) == 1


def test_maintenance_always_answers_200(server):
    assert ok_data(server.post("maintenance", {"operation": "set_log_level", "params": {"log_level": "debug"}})) == \
        {"State": "set log level to debug"}
    assert ok_data(server.post("maintenance", {"operation": "set_log_level", "params": {}})) == \
        {"State": "log_level is required"}
    assert "parse log level failed" in ok_data(
        server.post("maintenance", {"operation": "set_log_level", "params": {"log_level": "loud"}}))["State"]
    assert ok_data(server.post("maintenance", {"operation": "set_force_log_msg", "params": {"force": True}})) == \
        {"State": "set force log msg to true"}
    assert ok_data(server.post("maintenance", {"operation": "reset_log_msg",
                                               "params": {"count": 3, "duration": 2}})) == \
        {"State": "reset log msg count to 3, duration to 2"}
    assert ok_data(server.post("maintenance", {"operation": "fly"})) == {"State": "unsupported operation: fly"}


# -- restarts ---------------------------------------------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_restart_keeps_every_task_in_its_state(server, target_uri, sig):
    running = ok_data(server.post("create", create_body(target_uri, "a")))["task_id"]
    paused = ok_data(server.post("create", create_body(target_uri, "b")))["task_id"]
    no_auto = ok_data(server.post("create", create_body(target_uri, "c", disable_auto_start=True)))["task_id"]
    assert server.post("pause", {"task_id": paused}) == {"code": 200}
    before = {t["task_id"]: t for t in ok_data(server.post("list"))["tasks"]}

    server.restart(sig)

    after = {t["task_id"]: t for t in ok_data(server.post("list"))["tasks"]}
    assert set(after) == set(before)
    assert after[running]["state"] == "Running"
    assert after[paused]["state"] == "Paused"  # the official server would resume it
    assert after[paused]["reason"] == "manually pause through http interface"
    assert after[no_auto]["state"] == "Paused"
    assert after[no_auto]["reason"] == "the task is disabled auto start"
    for task_id in before:
        for key in ("milvus_connect_param", "collection_infos", "db_collections", "name_mapping"):
            assert after[task_id][key] == before[task_id][key]
    assert server.post("resume", {"task_id": paused}) == {"code": 200}


def test_config_errors_stop_startup(tmp_path):
    srv = CdcServer(tmp_path / "bad", {"maxTaskNum": 0})
    import subprocess
    from cdc_server import BINARY
    result = subprocess.run([str(BINARY), "--config", str(srv.config_path)], capture_output=True, text=True,
                            timeout=30)
    assert result.returncode != 0
    assert "maxTaskNum" in result.stderr
    result = subprocess.run([str(BINARY), "--config", str(tmp_path / "missing.yaml")], capture_output=True,
                            text=True, timeout=30)
    assert result.returncode != 0 and "missing.yaml" in result.stderr


def test_unknown_config_key_warns(tmp_path, bed_env):
    srv = CdcServer(tmp_path / "warn", {"extra_lines": ["someTypo: 3"]}, bed_env=bed_env).start()
    try:
        assert "unknown config key 'someTypo' is ignored" in srv.log()
    finally:
        srv.stop()


# -- concurrency ------------------------------------------------------------------------

def test_fifty_concurrent_clients_leave_the_store_consistent(tmp_path, target_uri, bed_env):
    srv = CdcServer(tmp_path / "conc", {"maxTaskNum": 500}, bed_env=bed_env).start()
    created, deleted, failures = [], [], []
    lock = threading.Lock()

    def client(i):
        try:
            for j in range(2):
                reply = srv.post("create", create_body(target_uri, f"c_{i}_{j}"))
                task_id = ok_data(reply)["task_id"]
                with lock:
                    created.append(task_id)
                ok_data(srv.post("list"))
                if j == 0:
                    assert srv.post("delete", {"task_id": task_id}) == {"code": 200}
                    with lock:
                        deleted.append(task_id)
        except Exception as exc:  # collected and asserted below
            with lock:
                failures.append(repr(exc))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    try:
        assert failures == []
        expected = set(created) - set(deleted)
        assert len(expected) == 50
        listed = {t["task_id"] for t in ok_data(srv.post("list"))["tasks"]}
        assert listed == expected
        srv.restart(signal.SIGKILL)
        listed = {t["task_id"]: t["state"] for t in ok_data(srv.post("list"))["tasks"]}
        assert set(listed) == expected and set(listed.values()) == {"Running"}
    finally:
        srv.stop()


# -- operations endpoints ---------------------------------------------------------------

def test_healthz_and_metrics(server, target_uri):
    status, text = server.raw("GET", "/healthz")
    assert status == 200 and json.loads(text)["status"] == "ok"
    task_id = ok_data(server.post("create", create_body(target_uri)))["task_id"]
    server.post("pause", {"task_id": task_id})
    server.raw("GET", "/cdc")
    text = server.metrics()
    assert 'milvus_cdc_task_num{task_state="Paused"} 1' in text
    assert 'milvus_cdc_task_num{task_state="Running"} 0' in text
    assert f'milvus_cdc_task_state{{task_id="{task_id}"}} 2' in text
    assert 'milvus_cdc_request_total{request_type="create",request_status="success"} 1' in text
    assert 'milvus_cdc_request_total{request_type="unknown",request_status="invalid_method"} 1' in text
    assert 'milvus_cdc_request_latency_bucket{request_type="create",le="+Inf"} 1' in text
    server.post("delete", {"task_id": task_id})
    assert f'milvus_cdc_task_state{{task_id="{task_id}"}} -1' in server.metrics()
