"""Shared helpers for the end-to-end tests against the local test bed (scripts/testbed.sh).

Everything here polls against a deadline; nothing waits a fixed time.
"""
import os
import random
import subprocess
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TESTBED = REPO / "scripts" / "testbed.sh"

# CDC_E2E_TARGET=replica runs the suites against the bed's REPLICA (a standby Milvus,
# common.ttMsgEnabled=false) instead of TARGET: conftest's `bed_env` then maps REPLICA_* onto
# TARGET_* and the `target` alias connects to REPLICA (tests/e2e/conftest.py).
E2E_TARGETS = ("target", "replica")
E2E_TARGET = os.environ.get("CDC_E2E_TARGET") or "target"
STANDBY = E2E_TARGET == "replica"


def target_component(bed_env):
    """The bed component (bed_ctl, bed_pid) the tests' TARGET is: "target", or "replica" when
    CDC_E2E_TARGET=replica."""
    return bed_env.get("TARGET_COMPONENT", "target")


# A Strong read on a standby answers once a forwarded tick passes the standby's "now"; a paused
# task stops forwarding ticks while an in-scope change is pending (a replica must not show a time
# it does not hold), so such a read waits until its deadline. Reads that check that a paused task
# wrote nothing use this instead: Eventually on REPLICA (what is applied), Strong on TARGET.
PAUSED_READ = "Eventually" if STANDBY else "Strong"


def expected_write_mode():
    """The write mode a task in `auto` mode must pick on the tests' TARGET: "replicate" on
    REPLICA (ttMsgEnabled=false), "api" on TARGET."""
    return "replicate" if STANDBY else "api"

# MsgType values (milvus-proto common.proto), checked against pymilvus's bundled protos in tests
MSG_INSERT = 400
MSG_DELETE = 401
MSG_FLUSH = 402
MSG_TIME_TICK = 1200
MSG_CREATE_COLLECTION = 100
MSG_LOAD_COLLECTION = 106
MSG_CREATE_INDEX = 300


class Deadline:
    """`with`-free deadline: Deadline(30).left(), .expired()."""

    def __init__(self, seconds):
        self.end = time.monotonic() + seconds

    def left(self):
        return max(0.0, self.end - time.monotonic())

    def expired(self):
        return time.monotonic() >= self.end


def wait_until(pred, timeout, desc, interval=0.5, max_interval=3.0):
    """Call pred() until it returns a truthy value (returned) or `timeout` seconds pass.

    Exceptions from pred() count as "not yet"; the last one is reported on timeout.
    The poll interval grows from `interval` to `max_interval`.
    """
    dl = Deadline(timeout)
    last_exc = None
    last_val = None
    while True:
        try:
            last_val = pred()
            if last_val:
                return last_val
        except Exception as e:  # noqa: BLE001 - polling treats any failure as "not yet"
            last_exc = e
        if dl.expired():
            raise AssertionError(
                "timed out after %ss waiting for %s (last value: %r, last error: %r)"
                % (timeout, desc, last_val, last_exc))
        time.sleep(min(interval, dl.left()))
        interval = min(interval * 1.5, max_interval)


def unique_name(prefix):
    return "%s_%s" % (prefix, uuid.uuid4().hex[:8])


# ------------------------------------------------------------------ bed script

def run_testbed(*args, timeout=1800, check=True):
    """Run scripts/testbed.sh; stdout captured, stderr (progress) captured too."""
    r = subprocess.run([str(TESTBED), *args], capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError("scripts/testbed.sh %s failed (rc %d):\n%s\n%s"
                           % (" ".join(args), r.returncode, r.stdout[-4000:], r.stderr[-8000:]))
    return r


BED_COMPONENTS = ("etcd", "kafka", "pulsar", "source", "target", "replica")
QUEUES = ("etcd", "kafka", "pulsar")  # components named without the milvus- prefix


def bed_ctl(action, component, *flags, timeout=600):
    """One component of the running bed: bed_ctl("restart", "kafka"), bed_ctl("stop", "target",
    "--kill"), bed_ctl("freeze", "target"), ... (scripts/testbed.sh stop|start|restart|freeze|thaw).
    Returns the seconds it took; raises RuntimeError with the script's output on failure."""
    t0 = time.monotonic()
    run_testbed(action, component, *flags, timeout=timeout)
    return time.monotonic() - t0


def bed_status():
    """{component: state} from `scripts/testbed.sh status` (healthy, unhealthy, frozen, stopped,
    dead), components named as bed_ctl takes them."""
    out = {}
    for line in run_testbed("status", check=False, timeout=120).stdout.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 3 and parts[0] in QUEUES + tuple("milvus-" + c for c in BED_COMPONENTS):
            out[parts[0].replace("milvus-", "")] = parts[2]
    return out


def bed_pid(bed_env, component):
    """PID in the component's pidfile (None when stopped)."""
    d = component if component in QUEUES else "milvus-" + component
    try:
        return int((Path(bed_env["TESTBED_RUN_DIR"]) / d / "pid").read_text().strip())
    except (OSError, ValueError):
        return None


def bed_restore():
    """After a fault test: thaw whatever is frozen, start whatever is stopped (`up` reuses the
    running components and the data of the stopped ones), wait until all are healthy."""
    for comp, state in bed_status().items():
        if state == "frozen":
            run_testbed("thaw", comp, check=False, timeout=60)
    args = ["--replica"] if os.environ.get("TESTBED_REPLICA") == "1" or STANDBY else []
    if os.environ.get("SOURCE_MQ") == "pulsar":
        args += ["--mq", "pulsar"]
    run_testbed("up", *args, timeout=900)


def source_mq(bed_env):
    """The bed SOURCE's message queue: "kafka" or "pulsar"."""
    return bed_env.get("SOURCE_MQ", "kafka")


def parse_env(text):
    env = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            env[k.strip()] = v.strip()
    return env


# ------------------------------------------------------------------ etcd (Debian etcdctl)

def etcd_keys(endpoints, prefix):
    r = subprocess.run(["etcdctl", "--endpoints=" + endpoints, "--command-timeout=10s",
                        "get", "--prefix", "--keys-only", prefix],
                       capture_output=True, text=True, timeout=30,
                       env={**os.environ, "ETCDCTL_API": "3"})
    if r.returncode != 0:
        raise RuntimeError("etcdctl failed: %s" % r.stderr)
    return [k for k in r.stdout.splitlines() if k.strip()]


def etcd_value(endpoints, key):
    r = subprocess.run(["etcdctl", "--endpoints=" + endpoints, "--command-timeout=10s",
                        "get", "--print-value-only", key],
                       capture_output=True, timeout=30, env={**os.environ, "ETCDCTL_API": "3"})
    if r.returncode != 0:
        raise RuntimeError("etcdctl failed: %s" % r.stderr)
    return r.stdout[:-1] if r.stdout.endswith(b"\n") else r.stdout


# ------------------------------------------------------------------ Kafka (confluent-kafka)

def kafka_topics(brokers):
    from confluent_kafka.admin import AdminClient
    md = AdminClient({"bootstrap.servers": brokers}).list_topics(timeout=10)
    return sorted(md.topics)


def read_topic(brokers, topic, timeout=60):
    """All messages of partition 0 of `topic`, from the low to the current high watermark,
    as a list of (offset, payload bytes). Milvus writes only partition 0, without keys."""
    from confluent_kafka import Consumer, KafkaError, TopicPartition

    c = Consumer({
        "bootstrap.servers": brokers,
        "group.id": unique_name("bed-smoke"),
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "allow.auto.create.topics": False,
    })
    try:
        lo, hi = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        out = []
        if hi <= lo:
            return out
        c.assign([TopicPartition(topic, 0, lo)])
        dl = Deadline(timeout)
        while not out or out[-1][0] < hi - 1:
            if dl.expired():
                raise AssertionError("read %d of %d messages of %s before the deadline"
                                     % (len(out), hi - lo, topic))
            m = c.poll(min(1.0, dl.left()))
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    continue
                raise RuntimeError("kafka error on %s: %s" % (topic, m.error()))
            out.append((m.offset(), m.value()))
        return out
    finally:
        c.close()


def msg_type(payload):
    """MsgType of one Milvus MQ payload: every payload parses as common.MsgHeader."""
    from pymilvus.grpc_gen import common_pb2
    h = common_pb2.MsgHeader()
    h.ParseFromString(payload)
    return h.base.msg_type


# ------------------------------------------------------------------ Milvus workload

DIM = 128


def smoke_schema():
    from pymilvus import CollectionSchema, DataType, FieldSchema
    return CollectionSchema([
        FieldSchema("pk", DataType.INT64, is_primary=True, auto_id=False),
        FieldSchema("vec", DataType.FLOAT_VECTOR, dim=DIM),
        FieldSchema("title", DataType.VARCHAR, max_length=64),
        FieldSchema("meta", DataType.JSON),
    ], description="test bed smoke collection")


def smoke_rows(start, n, seed=7):
    rnd = random.Random(seed + start)
    pks = list(range(start, start + n))
    vecs = [[rnd.random() for _ in range(DIM)] for _ in range(n)]
    titles = ["row-%d" % i for i in pks]
    metas = [{"i": i, "even": i % 2 == 0} for i in pks]
    return [pks, vecs, titles, metas]


def count_star(coll, expr="pk >= 0"):
    res = coll.query(expr, output_fields=["count(*)"], consistency_level="Strong", timeout=60)
    return res[0]["count(*)"]


def run_workload(alias, name, rows=10_000, batch=2_500, shards=2):
    """Create, insert, flush, index, load: the same sequence on any Milvus of the bed."""
    from pymilvus import Collection
    coll = Collection(name, smoke_schema(), using=alias, shards_num=shards)
    for start in range(0, rows, batch):
        res = coll.insert(smoke_rows(start, min(batch, rows - start)), timeout=60)
        assert res.insert_count == min(batch, rows - start)
    coll.flush(timeout=120)
    coll.create_index("vec", {"index_type": "IVF_FLAT", "metric_type": "L2",
                              "params": {"nlist": 64}}, timeout=120)
    coll.load(timeout=300)
    return coll


def describe_raw(alias, name):
    """The raw DescribeCollectionResponse (pymilvus's dict drops the channel names)."""
    from pymilvus import connections
    from pymilvus.grpc_gen import milvus_pb2
    handler = connections._fetch_handler(alias)  # pinned pymilvus 2.3.7
    return handler._stub.DescribeCollection(
        milvus_pb2.DescribeCollectionRequest(collection_name=name), timeout=30)


def get_task(srv, task_id):
    return srv.post("get", {"task_id": task_id})["data"]["task"]


def create_task(srv, bed_env, **scope):
    """Creates a task into TARGET with `scope` (db_collections=..., ...) and waits until it replicates."""
    reply = srv.post("create", {"milvus_connect_param": {"uri": bed_env["TARGET_MILVUS_URI"], "connect_timeout": 10},
                                **scope})
    assert reply["code"] == 200, reply
    task_id = reply["data"]["task_id"]
    wait_until(lambda: "replicating" in get_task(srv, task_id).get("reason", ""), 60, "the task to replicate")
    return task_id
