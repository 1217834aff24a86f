"""Starts the real milvus-cdc binary for end-to-end tests: a free port, a temporary
config and task store, its log captured to a file, and small helpers for /cdc calls."""
import http.client
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BINARY = Path(os.environ.get("CDC_BINARY", REPO / "build" / "milvus-cdc"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout, interval=0.1, what="condition"):
    """Polls `predicate` until it returns a truthy value or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def source_mq_lines(bed):
    """sourceConfig's message-queue block for the bed's SOURCE (SOURCE_MQ: kafka or pulsar)."""
    if bed.get("SOURCE_MQ") == "pulsar":
        return ["  pulsar:", f"    address: {bed['PULSAR_URL']}", "    tenant: public", "    namespace: default"]
    return ["  kafka:", f"    address: {bed.get('KAFKA_BROKERS', '127.0.0.1:9092')}"]


class CdcServer:
    def __init__(self, workdir, config_overrides=None, bed_env=None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc = None
        self.log_path = self.workdir / "server.log"
        self.db_path = self.workdir / "meta.db"
        self.config_path = self.workdir / "cdc.yaml"
        self.bed_env = bed_env or {}
        self.write_config(config_overrides or {})

    def write_config(self, overrides):
        bed = self.bed_env
        lines = [
            f"address: 127.0.0.1:{self.port}",
            f"maxTaskNum: {overrides.get('maxTaskNum', 100)}",
            f"maxNameLength: {overrides.get('maxNameLength', 256)}",
            f"logLevel: {os.environ.get('CDC_LOG_LEVEL', 'info')}",
            "metaStoreConfig:",
            "  storeType: sqlite",
            f"  sqlitePath: {self.db_path}",
            "  rootPath: cdc",
            "sourceConfig:",
            "  etcd:",
            f"    address: [{bed.get('ETCD_ENDPOINTS', '127.0.0.1:2379')}]",
            f"    rootPath: {bed.get('SOURCE_ETCD_ROOT', 'by-dev')}",
            f"    metaSubPath: {bed.get('SOURCE_META_SUBPATH', 'meta')}",
            *source_mq_lines(bed),
            "  milvus:",
            f"    uri: {bed.get('SOURCE_MILVUS_URI', 'http://127.0.0.1:19530')}",
            f"  replicateChan: {bed.get('SOURCE_REPLICATE_CHANNEL', 'by-dev-replicate-msg')}",
            "retry:",
            f"  retryTimes: {overrides.get('retryTimes', 0)}",
            f"  initBackOff: {overrides.get('initBackOff', 1)}",
            f"  maxBackOff: {overrides.get('maxBackOff', 2)}",
        ]
        if "maxChunkBytes" in overrides:
            lines += ["backfill:", f"  maxChunkBytes: {overrides['maxChunkBytes']}"]
        lines += overrides.get("extra_lines", [])
        self.config_path.write_text("\n".join(lines) + "\n")

    # -- process -----------------------------------------------------------------------
    def start(self, timeout=30):
        assert BINARY.exists(), f"{BINARY} is missing: build it with `make build`"
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([str(BINARY), "--config", str(self.config_path)],
                                     stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
        log.close()
        wait_until(self._healthy, timeout, what=f"milvus-cdc on port {self.port} to answer /healthz")
        return self

    def _healthy(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"milvus-cdc exited with {self.proc.returncode}:\n{self.log()}")
        try:
            status, _ = self.raw("GET", "/healthz")
            return status == 200
        except OSError:
            return False

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if self.proc is None or self.proc.poll() is not None:
            return None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("milvus-cdc did not stop within %ss after signal %s" % (timeout, sig))

    def restart(self, sig=signal.SIGTERM):
        self.stop(sig)
        return self.start()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    # -- HTTP --------------------------------------------------------------------------
    def raw(self, method, path, body=None, timeout=60):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            if isinstance(body, str):
                body = body.encode()
            conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            return resp.status, resp.read().decode(errors="replace")
        finally:
            conn.close()

    def post(self, request_type, data=None, timeout=60):
        """POSTs one /cdc request and returns the parsed envelope (HTTP status must be 200)."""
        payload = {"request_type": request_type}
        if data is not None:
            payload["request_data"] = data
        status, text = self.raw("POST", "/cdc", json.dumps(payload), timeout=timeout)
        assert status == 200, (status, text)
        assert text.endswith("\n"), text
        return json.loads(text)

    def metrics(self):
        status, text = self.raw("GET", "/cdc/metrics")
        assert status == 200
        return text
