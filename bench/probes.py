"""Measurement side of the benchmark: the milvus-cdc process (started from the real binary),
/proc readings (CPU, RSS, peak RSS), the once-a-second sampler, and the marker poller that
times when rows become visible on TARGET."""
import http.client
import json
import os
import socket
import subprocess
import threading
import time
from pathlib import Path

from pymilvus import Collection

CLK_TCK = os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------------------ /proc
def proc_cpu_s(pid):
    """utime + stime of a process, in seconds (None when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14 and 15 of stat(5)
    except (OSError, IndexError, ValueError):
        return None


def proc_mem_kb(pid):
    """VmRSS, VmHWM (peak RSS), RssAnon and RssFile (shared libraries, binary) of a process, KiB."""
    out = {"VmRSS": None, "VmHWM": None, "RssAnon": None, "RssFile": None}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key = line.split(":", 1)[0]
                if key in out:
                    out[key] = int(line.split()[1])
    except OSError:
        pass
    return out


def machine_busy():
    """(busy, total) jiffies of all CPUs from /proc/stat."""
    with open("/proc/stat") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    idle = parts[3] + parts[4]
    return sum(parts) - idle, sum(parts)


def machine_info():
    model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kb = int(f.readline().split()[1])
    return {"nproc": os.cpu_count(), "cpu_model": model, "mem_gib": round(mem_kb / 1024 / 1024, 1),
            "kernel": os.uname().release, "loadavg_at_start": os.getloadavg()}


# ------------------------------------------------------------------------------ milvus-cdc
def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class CdcProcess:
    """The milvus-cdc binary with its own config and SQLite store under `workdir`."""

    def __init__(self, binary, workdir, bed, source_options=()):
        self.binary = Path(binary)
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.log_path = self.workdir / "server.log"
        self.config_path = self.workdir / "cdc.yaml"
        self.proc = None
        self.config_path.write_text("\n".join([
            f"address: 127.0.0.1:{self.port}",
            "logLevel: info",
            "metaStoreConfig:",
            "  storeType: sqlite",
            f"  sqlitePath: {self.workdir / 'meta.db'}",
            "sourceConfig:",
            "  etcd:",
            f"    address: [{bed['ETCD_ENDPOINTS']}]",
            f"    rootPath: {bed['SOURCE_ETCD_ROOT']}",
            f"    metaSubPath: {bed['SOURCE_META_SUBPATH']}",
            *(["  pulsar:", f"    address: {bed['PULSAR_URL']}"] if bed.get("SOURCE_MQ") == "pulsar"
              else ["  kafka:", f"    address: {bed['KAFKA_BROKERS']}"]),
            f"  replicateChan: {bed['SOURCE_REPLICATE_CHANNEL']}",
            *(f"  {o}" for o in source_options),  # e.g. "earlyApply: false"
            "  milvus:",  # backfill and verify read the source through its API
            f"    uri: {bed['SOURCE_MILVUS_URI']}",
            "retry:",
            "  retryTimes: 0",
            "  initBackOff: 1",
            "  maxBackOff: 2",
        ]) + "\n")

    @property
    def pid(self):
        return self.proc.pid

    def start(self, timeout=30):
        if not self.binary.exists():
            raise SystemExit(f"{self.binary} is missing: build it (make build) or set CDC_BINARY")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([str(self.binary), "--config", str(self.config_path)],
                                         stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"milvus-cdc exited with {self.proc.returncode}; see {self.log_path}")
            try:
                if self.get("/healthz")[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"milvus-cdc did not answer /healthz within {timeout}s")

    def stop(self, timeout=20):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def get(self, path, timeout=10):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            return resp.status, resp.read().decode(errors="replace")
        finally:
            conn.close()

    def post(self, request_type, data=None, timeout=60):
        body = {"request_type": request_type}
        if data is not None:
            body["request_data"] = data
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request("POST", "/cdc", body=json.dumps(body), headers={"Content-Type": "application/json"})
            reply = json.loads(conn.getresponse().read())
        finally:
            conn.close()
        if reply.get("code") != 200:
            raise RuntimeError(f"/cdc {request_type}: {reply}")
        return reply.get("data", {})

    def replicated_rows(self):
        """Rows milvus-cdc applied to the target, per source collection name (insert api)."""
        return self.progress()[0]

    def progress(self):
        """(rows applied per source collection, largest milvus_cdc_task_lag_ms over the DML
        channels or None, milvus_cdc_pack_latency_ms per stage: {"count", "sum", "le": {bound:
        cumulative count}}) from /cdc/metrics."""
        status, text = self.get("/cdc/metrics")
        rows, lag, stages = {}, None, {}
        if status != 200:
            return rows, lag, stages
        for line in text.splitlines():
            if line.startswith("milvus_cdc_pack_latency_ms_"):
                labels, value = line.rsplit(" ", 1)
                st = stages.setdefault(labels.split('stage="', 1)[1].split('"', 1)[0], {"count": 0, "sum": 0.0, "le": {}})
                if labels.startswith("milvus_cdc_pack_latency_ms_bucket"):
                    le = float(labels.split('le="', 1)[1].split('"', 1)[0])
                    st["le"][le] = st["le"].get(le, 0) + float(value)
                elif labels.startswith("milvus_cdc_pack_latency_ms_sum"):
                    st["sum"] += float(value)
                elif labels.startswith("milvus_cdc_pack_latency_ms_count"):
                    st["count"] += float(value)
            if line.startswith("milvus_cdc_task_lag_ms{"):
                v = float(line.rsplit(" ", 1)[1])
                lag = v if lag is None else max(lag, v)
            if not line.startswith("milvus_cdc_replicate_data_cnt{") or 'api_type="insert"' not in line:
                continue
            labels, value = line.rsplit(" ", 1)
            name = labels.split('collection_name="', 1)[1].split('"', 1)[0]
            rows[name] = rows.get(name, 0) + int(float(value))
        return rows, lag, stages


# ------------------------------------------------------------------------------ sampler
class Sampler:
    """Once a second: milvus-cdc CPU seconds, RSS and peak RSS, rows it replicated per
    collection, its lag gauge (largest over the DML channels), rows the active writer had acknowledged, the bed's Milvus/Kafka CPU and the
    whole machine's busy share. Rows are kept in `samples` (list of dicts)."""

    def __init__(self, cdc, bed_pids, interval=1.0):
        self.cdc = cdc
        self.bed_pids = bed_pids     # name -> pid of bed processes (for context only)
        self.interval = interval
        self.samples = []
        self.phase = "setup"
        self.writer = None           # the Writer whose acknowledged rows are sampled
        self._stop = threading.Event()
        self._thread = None
        self._lock = threading.Lock()

    def start(self):
        self._thread = threading.Thread(target=self._run, daemon=True, name="sampler")
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join()

    def latest(self):
        with self._lock:
            return self.samples[-1] if self.samples else None

    def take(self):
        busy, total = machine_busy()
        mem = proc_mem_kb(self.cdc.pid)
        try:
            replicated, lag_ms, pack_ms = self.cdc.progress()
        except OSError:
            replicated, lag_ms, pack_ms = {}, None, {}
        s = {"t": time.monotonic(), "phase": self.phase, "cdc_cpu_s": proc_cpu_s(self.cdc.pid),
             "cdc_rss_kb": mem["VmRSS"], "cdc_hwm_kb": mem["VmHWM"], "cdc_anon_kb": mem["RssAnon"],
             "cdc_file_kb": mem["RssFile"], "replicated": replicated, "cdc_lag_gauge_ms": lag_ms,
             "cdc_pack_latency_ms": pack_ms,
             "writer_rows": self.writer.acked_rows if self.writer else None,
             "writer_collection": self.writer.collection if self.writer else None,
             "machine_busy": busy, "machine_total": total,
             "bed_cpu_s": {name: proc_cpu_s(pid) for name, pid in self.bed_pids.items()}}
        with self._lock:
            self.samples.append(s)
        return s

    def _run(self):
        next_t = time.monotonic()
        while not self._stop.is_set():
            self.take()
            next_t += self.interval
            self._stop.wait(max(0.0, next_t - time.monotonic()))


# ------------------------------------------------------------------------------ markers
class MarkerPoller:
    """Times marker rows from acknowledgement to visibility: every `interval` seconds one query
    `pk in [<pending markers>]` on the watched TARGET collection (never one query per row).
    A marker is visible when the query that returns it has answered; lag = that moment minus
    the monotonic time its batch was acknowledged by the writer."""

    def __init__(self, alias, interval=0.02, consistency="Eventually", give_up_s=300):
        self.alias = alias
        self.interval = interval
        self.consistency = consistency
        self.give_up_s = give_up_s
        self.results = []        # dicts: phase, pk, acked (monotonic), lag_s (None: not seen in time)
        self.queries = 0
        self._pending = {}
        self._collection = None
        self._phase = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None

    def watch(self, collection_name, phase):
        with self._lock:
            self._collection = Collection(collection_name, using=self.alias) if collection_name else None
            self._phase = phase

    def add(self, pk, acked):
        with self._lock:
            self._pending[pk] = (acked, self._phase)

    def pending(self):
        with self._lock:
            return len(self._pending)

    def start(self):
        self._thread = threading.Thread(target=self._run, daemon=True, name="markers")
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join()

    def wait_drained(self, timeout):
        deadline = time.monotonic() + timeout
        while self.pending() and time.monotonic() < deadline:
            time.sleep(0.05)

    def _run(self):
        while not self._stop.is_set():
            with self._lock:
                coll = self._collection
                pending = dict(self._pending)
            if coll is None or not pending:
                self._stop.wait(self.interval)
                continue
            started = time.monotonic()
            try:
                rows = coll.query("pk in [%s]" % ",".join(map(str, pending)), output_fields=["pk"],
                                  consistency_level=self.consistency, timeout=30)
            except Exception:  # a query can fail while the collection is loading; try again
                rows = []
            answered = time.monotonic()
            self.queries += 1
            seen = {r["pk"] for r in rows}
            with self._lock:
                for pk in seen:
                    entry = self._pending.pop(pk, None)
                    if entry:
                        self.results.append({"phase": entry[1], "pk": pk, "acked": entry[0],
                                             "lag_s": answered - entry[0]})
                for pk, (acked, phase) in list(self._pending.items()):
                    if answered - acked > self.give_up_s:
                        del self._pending[pk]
                        self.results.append({"phase": phase, "pk": pk, "acked": acked, "lag_s": None})
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))
