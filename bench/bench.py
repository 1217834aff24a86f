"""Replication benchmark of milvus-cdc on the local test bed (run it through bench/run.sh).

Phases, each with its own collection (dropped afterwards so memory does not pile up):

  direct  flat-out inserts straight into a TARGET collection: TARGET's insert ceiling, and its
          own insert-to-visible latency. milvus-cdc runs but has nothing to do.
  live    flat-out inserts into SOURCE while milvus-cdc replicates: source and replicated rows/s,
          lag, milvus-cdc CPU per row. SOURCE, TARGET and milvus-cdc share the machine.
  drain   the task is paused, SOURCE takes `--window` seconds of flat-out inserts, the task is
          resumed: how fast milvus-cdc alone empties a backlog into TARGET (nothing else writes,
          as in `direct`), and its peak memory while doing so.
  half    inserts into SOURCE at half the live phase's replicated rate: lag percentiles.
  direct_half  inserts straight into TARGET at that same rate: TARGET's own insert-to-visible
          latency, the part of the lag that is not milvus-cdc's.
  multi   `--multi-collections` collections written at `--multi-rate` rows/s in total, replicated
          first by one `*` task, then (on a fresh milvus-cdc process) by one task per collection:
          milvus-cdc's CPU and RSS with many tasks against one task.
  backfill  `--backfill-rows` rows written to SOURCE before a task exists, then copied by a task
          created with "backfill": true (nothing else writes): copy rows/s against `direct`'s
          TARGET insert ceiling, milvus-cdc's peak RSS while copying; then `verify` of the copy
          at the keys and rows levels: rows compared per second.

Lag = time from SOURCE acknowledging a marker row's batch to the row answering a query by
primary key on TARGET. Writes the result JSON (with the per-second series and every marker)
and prints a table; bench/plot.py draws the chart.
"""
import argparse
import json
import os
import re
import sys
import time
import uuid
from pathlib import Path

from pymilvus import Collection, connections, utility

from load import Batches, RawInserter, Writer, bench_schema
from probes import CdcProcess, MarkerPoller, Sampler, machine_info

REPO = Path(__file__).resolve().parents[1]
BED_KEYS = ("ETCD_ENDPOINTS", "SOURCE_MILVUS_URI", "TARGET_MILVUS_URI", "SOURCE_ETCD_ROOT",
            "SOURCE_META_SUBPATH", "SOURCE_REPLICATE_CHANNEL", "TESTBED_RUN_DIR")
PHASES = ("direct", "live", "drain", "half", "direct_half", "backfill", "multi")

TARGETS = {  # issue 6
    "throughput_ratio": 0.9,       # replicated rows/s >= 0.9 x TARGET direct-insert rows/s
    "lag_p99_half_s": 1.0,         # lag p99 at half of the maximum rate
    "cpu_pct_per_10k": 10.0,       # % of one core per 10 000 rows/s
    "rss_mb": 64.0,                # peak RSS with one running task
    "backfill_ratio": 0.8,         # issue 14: backfill rows/s >= 0.8 x TARGET direct-insert rows/s
    "backfill_rss_mb": 128.0,      # peak RSS while copying
    "verify_keys_rows_per_s": 50000.0,
    "multi_cpu_ratio": 2.0,        # issue 17: 20 tasks <= 2 x the CPU of one `*` task ...
    "multi_rss_ratio": 1.5,        # ... and <= 1.5 x its RSS
}


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def wait_until(pred, timeout, what, interval=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    raise RuntimeError(f"timed out after {timeout}s waiting for {what}")


def percentile(values, p):
    if not values:
        return None
    v = sorted(values)
    k = (len(v) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


class Bench:
    def __init__(self, args, bed, out_dir):
        self.args = args
        self.bed = bed
        self.out_dir = out_dir
        self.suffix = uuid.uuid4().hex[:6]
        self.batches = Batches(args.batch, args.dim)
        self.cdc = CdcProcess(args.cdc_binary, out_dir / "cdc", bed,
                              source_options=[o.replace("=", ": ", 1) for o in args.source_option])
        self.task_id = None
        self.phases = {}
        self.next_pk = 1
        self.sampler = None
        self.markers = None
        self.source_ins = RawInserter(bed["SOURCE_MILVUS_URI"])
        self.target_ins = RawInserter(bed["TARGET_MILVUS_URI"])

    # -------------------------------------------------------------- collections
    def index_and_load(self, name, alias):
        coll = Collection(name, using=alias)
        coll.create_index("vec", {"index_type": "FLAT", "metric_type": "L2", "params": {}}, timeout=120)
        coll.load(timeout=300)

    def replicated_collection(self, phase):
        """A SOURCE collection milvus-cdc copies to TARGET, indexed and loaded there (only)."""
        name = f"bench_{phase}_{self.suffix}"
        Collection(name, bench_schema(self.args.dim), using="source", shards_num=self.args.shards)
        wait_until(lambda: utility.has_collection(name, using="target"), 120, f"{name} created on TARGET")
        self.index_and_load(name, "target")
        return name

    def drop(self, name, alias):
        if self.args.keep:
            return
        if utility.has_collection(name, using=alias):
            utility.drop_collection(name, using=alias)

    def drop_replicated(self, name):
        if self.args.keep:
            return
        self.drop(name, "source")
        try:  # milvus-cdc drops the copy; wait so TARGET's memory is free for the next phase
            wait_until(lambda: not utility.has_collection(name, using="target"), 60, f"{name} dropped on TARGET")
        except RuntimeError as e:
            log(f"warning: {e}; dropping it on TARGET directly")
            self.drop(name, "target")

    def count_on_target(self, name):
        return Collection(name, using="target").query("pk >= 0", output_fields=["count(*)"],
                                                      consistency_level="Strong", timeout=300)[0]["count(*)"]

    # -------------------------------------------------------------- phases
    def write(self, phase, inserter, collection, rate, duration, markers_on=None):
        """Runs one writer for `duration` seconds; returns (writer, t_start, t_end)."""
        writer = Writer(inserter, self.batches, collection, self.next_pk, rate=rate,
                        marker_every=self.args.marker_every if markers_on else 0.0, on_marker=self.markers.add)
        self.markers.watch(markers_on, phase)
        self.sampler.phase = phase
        self.sampler.writer = writer
        t0 = time.monotonic()
        writer.start(duration)
        writer.join()
        t1 = time.monotonic()
        self.next_pk = writer.next_pk
        self.sampler.take()
        return writer, t0, t1

    def wait_replicated(self, name, rows, timeout):
        def done():
            return self.cdc.replicated_rows().get(name, 0) >= rows
        wait_until(done, timeout, f"milvus-cdc to apply {rows} rows of {name}", interval=0.1)
        return time.monotonic()

    def phase_direct(self, phase="direct", rate=0.0):
        a = self.args
        name = f"bench_{phase}_{self.suffix}"
        Collection(name, bench_schema(a.dim), using="target", shards_num=a.shards)
        self.index_and_load(name, "target")
        how = f"{rate:.0f} rows/s" if rate else "flat-out inserts"
        log(f"{phase}: {how} into TARGET {name} for {a.warmup + a.window}s")
        writer, t0, t1 = self.write(phase, self.target_ins, name, rate, a.warmup + a.window, markers_on=name)
        self.markers.wait_drained(60)
        self.markers.watch(None, None)
        rows_on_target = self.count_on_target(name)
        self.drop(name, "target")
        self.phases[phase] = {"collection": name, "t_start": t0, "t_end": t1, "window": [t0 + a.warmup, t1],
                              "rows": writer.acked_rows, "rows_on_target": rows_on_target, "rate": rate}

    def phase_live(self):
        a = self.args
        name = self.replicated_collection("live")
        log(f"live: {'flat-out' if not a.rate else f'{a.rate:.0f} rows/s'} inserts into SOURCE {name} "
            f"for {a.warmup + a.window}s, milvus-cdc replicating")
        writer, t0, t1 = self.write("live", self.source_ins, name, a.rate, a.warmup + a.window, markers_on=name)
        backlog = writer.acked_rows - self.cdc.replicated_rows().get(name, 0)
        log(f"live: {writer.acked_rows} rows written, {backlog} still to replicate")
        t_done = self.wait_replicated(name, writer.acked_rows, max(300, 10 * a.window))
        self.sampler.take()
        self.markers.wait_drained(60)
        self.markers.watch(None, None)
        rows_on_target = self.count_on_target(name)
        self.drop_replicated(name)
        self.phases["live"] = {"collection": name, "t_start": t0, "t_end": t1, "window": [t0 + a.warmup, t1],
                               "rows": writer.acked_rows, "backlog_at_end": backlog, "caught_up": t_done,
                               "catch_up_s": t_done - t1, "rows_on_target": rows_on_target}

    def phase_drain(self):
        a = self.args
        name = self.replicated_collection("drain")
        self.cdc.post("pause", {"task_id": self.task_id})
        log(f"drain: task paused; flat-out inserts into SOURCE {name} for {a.window}s")
        writer, t0, t1 = self.write("drain", self.source_ins, name, 0.0, a.window)
        self.sampler.phase = "drain"
        self.sampler.writer = None
        t_resume = time.monotonic()
        self.cdc.post("resume", {"task_id": self.task_id})
        log(f"drain: task resumed with {writer.acked_rows} rows to apply")
        t_done = self.wait_replicated(name, writer.acked_rows, max(600, 20 * a.window))
        self.sampler.take()
        rows_on_target = self.count_on_target(name)
        self.drop_replicated(name)
        self.phases["drain"] = {"collection": name, "t_start": t0, "t_end": t1, "resumed": t_resume,
                                "caught_up": t_done, "rows": writer.acked_rows, "rows_on_target": rows_on_target}

    def phase_half(self, max_rate):
        a = self.args
        rate = a.half_rate or a.half_fraction * max_rate
        name = self.replicated_collection("half")
        log(f"half: {rate:.0f} rows/s into SOURCE {name} for {a.warmup + a.window}s")
        writer, t0, t1 = self.write("half", self.source_ins, name, rate, a.warmup + a.window, markers_on=name)
        t_done = self.wait_replicated(name, writer.acked_rows, max(300, 10 * a.window))
        self.markers.wait_drained(60)
        self.markers.watch(None, None)
        rows_on_target = self.count_on_target(name)
        self.drop_replicated(name)
        self.phases["half"] = {"collection": name, "t_start": t0, "t_end": t1, "window": [t0 + a.warmup, t1],
                               "rate": rate, "rows": writer.acked_rows, "behind_schedule_max_s": writer.behind_s,
                               "caught_up": t_done, "rows_on_target": rows_on_target}

    def phase_backfill(self):
        a = self.args
        name = f"bench_backfill_{self.suffix}"
        coll = Collection(name, bench_schema(a.dim), using="source", shards_num=a.shards)
        log(f"backfill: writing {a.backfill_rows} rows into SOURCE {name} (no task covers it yet)")
        pk, n = self.next_pk, 0
        while pk - self.next_pk < a.backfill_rows:
            self.source_ins.insert(self.batches.request(name, pk, n))
            pk += self.batches.batch
            n += 1
        rows = pk - self.next_pk
        self.next_pk = pk
        coll.flush(timeout=600)
        self.index_and_load(name, "source")
        self.sampler.phase = "backfill"
        self.sampler.writer = None
        self.sampler.take()
        t0 = time.monotonic()
        task = self.cdc.post("create", {
            "milvus_connect_param": {"uri": self.bed["TARGET_MILVUS_URI"], "connect_timeout": 10},
            "db_collections": {"default": [{"name": name}]}, "backfill": True})["task_id"]
        log(f"backfill: task {task} created with backfill; copying {rows} rows")

        def progress():
            b = self.cdc.post("get", {"task_id": task})["task"].get("backfill_progress", [])
            if b and b[0]["state"] == "failed":
                raise RuntimeError(f"backfill failed: {b[0]}")
            return b[0] if b and b[0]["state"] == "done" else None
        done = wait_until(progress, 1800, "the backfill to finish", interval=0.25)
        t1 = time.monotonic()
        self.sampler.take()
        log(f"backfill: {done['rows_copied']} rows copied in {t1 - t0:.1f} s")
        self.index_and_load(name, "target")
        rows_on_target = self.count_on_target(name)
        verify = {}
        for level in ("keys", "rows"):
            v0 = time.monotonic()
            report = self.cdc.post("verify", {"task_id": task, "level": level, "wait_s": 25}, timeout=60)["verify"]
            while report["state"] == "running":
                time.sleep(0.25)
                report = self.cdc.post("get", {"task_id": task})["task"]["verify"]
            v1 = time.monotonic()
            c = report.get("collections", [{}])[0]
            verify[level] = {"seconds": v1 - v0, "equal": report.get("equal"), "source_rows": c.get("source_rows"),
                             "rows_per_s": (c.get("source_rows") or 0) / max(1e-9, v1 - v0)}
            log(f"backfill: verify {level}: equal={report.get('equal')} in {v1 - v0:.1f} s")
        self.cdc.post("delete", {"task_id": task})
        self.drop(name, "source")
        self.drop(name, "target")
        self.phases["backfill"] = {"collection": name, "t_start": t0, "t_end": t1, "rows": rows,
                                   "rows_copied": done["rows_copied"], "rows_on_target": rows_on_target,
                                   "verify": verify}

    def phase_multi(self):
        """The same writes replicated by one `*` task, then by one task per collection, each on
        a fresh milvus-cdc process so neither inherits the other's memory."""
        a = self.args
        names = [f"bench_multi{i}_{self.suffix}" for i in range(a.multi_collections)]
        bodies = {"star": [{"db_collections": {"*": [{"name": "*"}]}}],
                  "per_collection": [{"db_collections": {"default": [{"name": n}]}} for n in names]}
        self.phases["multi"] = {"collections": names, "rate": a.multi_rate, "steps": {}}
        for step in ("star", "per_collection"):
            if self.task_id:
                self.cdc.post("delete", {"task_id": self.task_id})
                self.task_id = None
            self.cdc.stop()
            self.cdc.start()
            tasks = [self.cdc.post("create", dict(b, milvus_connect_param={
                "uri": self.bed["TARGET_MILVUS_URI"], "connect_timeout": 10}))["task_id"] for b in bodies[step]]
            for n in names:
                if not utility.has_collection(n, using="source"):
                    Collection(n, bench_schema(a.dim), using="source", shards_num=a.shards)
            for n in names:
                wait_until(lambda n=n: utility.has_collection(n, using="target"), 120, f"{n} created on TARGET")
            log(f"multi/{step}: {len(tasks)} task(s), {a.multi_rate:.0f} rows/s over {len(names)} collections "
                f"for {a.warmup + a.window}s")
            before = self.cdc.replicated_rows()
            writer, t0, t1 = self.write(f"multi_{step}", self.source_ins, names, a.multi_rate, a.warmup + a.window)
            want = {n: before.get(n, 0) for n in names}
            for i in range(writer.calls):
                want[names[i % len(names)]] += self.batches.batch
            wait_until(lambda: all(self.cdc.replicated_rows().get(n, 0) >= want[n] for n in names),
                       max(300, 10 * a.window), f"multi/{step}: every row applied", interval=0.2)
            self.phases["multi"]["steps"][step] = {"tasks": len(tasks), "t_start": t0, "t_end": t1,
                                                   "window": [t0 + a.warmup, t1], "rows": writer.acked_rows}
            for t in tasks:
                self.cdc.post("delete", {"task_id": t})
        for n in names:
            self.drop(n, "source")
            self.drop(n, "target")

    def multi_report(self):
        out = {}
        p = self.phases["multi"]
        for step, s in p["steps"].items():
            a, b = self.samples_between(*s["window"])
            dt = b["t"] - a["t"]
            rep = sum(b["replicated"].get(n, 0) - a["replicated"].get(n, 0) for n in p["collections"])
            rss = [x["cdc_rss_kb"] for x in self.sampler.samples if a["t"] <= x["t"] <= b["t"]]
            out[step] = {"tasks": s["tasks"], "window_s": round(dt, 1), "replicated_rows_per_s": rep / dt,
                         "cdc_cpu_s": b["cdc_cpu_s"] - a["cdc_cpu_s"],
                         "cpu_s_per_m_rows": (b["cdc_cpu_s"] - a["cdc_cpu_s"]) / max(1, rep) * 1e6,
                         "rss_max_mb": max(rss) / 1024 if rss else None,
                         "rss_mean_mb": sum(rss) / len(rss) / 1024 if rss else None}
        if "star" in out and "per_collection" in out:
            one, many = out["star"], out["per_collection"]
            out["cpu_ratio"] = many["cdc_cpu_s"] / max(1e-9, one["cdc_cpu_s"])
            out["rss_ratio"] = (many["rss_max_mb"] or 0) / max(1e-9, one["rss_max_mb"] or 0)
        return out

    # -------------------------------------------------------------- run
    def run(self):
        a = self.args
        connections.connect(alias="source", uri=self.bed["SOURCE_MILVUS_URI"], timeout=60)
        connections.connect(alias="target", uri=self.bed["TARGET_MILVUS_URI"], timeout=60)
        connections.connect(alias="markers", uri=self.bed["TARGET_MILVUS_URI"], timeout=60)
        self.cdc.start()
        log(f"milvus-cdc pid {self.cdc.pid} on port {self.cdc.port} ({self.cdc.binary})")
        if set(a.phases) & {"live", "drain", "half"}:  # the backfill phase makes its own task
            self.task_id = self.cdc.post("create", {
                "milvus_connect_param": {"uri": self.bed["TARGET_MILVUS_URI"], "connect_timeout": 10},
                "db_collections": {"*": [{"name": "*"}]}})["task_id"]
        bed_pids = {}
        target_comp = "milvus-replica" if self.bed["TARGET_NAME"] == "REPLICA" else "milvus-target"
        for comp in ("milvus-source", target_comp, "kafka", "pulsar", "etcd"):
            try:
                bed_pids[comp] = int((Path(self.bed["TESTBED_RUN_DIR"]) / comp / "pid").read_text())
            except (OSError, ValueError):
                pass
        self.sampler = Sampler(self.cdc, bed_pids).start()
        self.markers = MarkerPoller("markers", a.poll_interval, a.consistency).start()
        try:
            if "direct" in a.phases:
                self.phase_direct()
            max_rate = None
            if "live" in a.phases:
                self.phase_live()
                max_rate = self.window_rates("live")["replicated_rows_per_s"]
            if "drain" in a.phases:
                self.phase_drain()
            if "half" in a.phases:
                if not max_rate and not a.half_rate:
                    raise SystemExit("the half phase needs the live phase or --half-rate")
                self.phase_half(max_rate)
            if "direct_half" in a.phases:
                rate = a.half_rate or (a.half_fraction * max_rate if max_rate else 0)
                if not rate:
                    raise SystemExit("the direct_half phase needs the live phase or --half-rate")
                self.phase_direct("direct_half", rate)
            if "backfill" in a.phases:
                self.phase_backfill()
            if "multi" in a.phases:
                self.phase_multi()
        finally:
            self.markers.stop()
            self.sampler.take()
            self.sampler.stop()
            self.cdc.stop()
            self.source_ins.close()
            self.target_ins.close()
        return self.report()

    # -------------------------------------------------------------- results
    def samples_between(self, a, b):
        s = [x for x in self.sampler.samples if a - 0.5 <= x["t"] <= b + 0.5]
        return s[0], s[-1]

    def window_rates(self, phase):
        p = self.phases[phase]
        a, b = self.samples_between(*p["window"])
        dt = b["t"] - a["t"]
        coll = p["collection"]
        rep = b["replicated"].get(coll, 0) - a["replicated"].get(coll, 0)
        wrote = (b["writer_rows"] or 0) - (a["writer_rows"] or 0)
        cpu = b["cdc_cpu_s"] - a["cdc_cpu_s"]
        gauges = sorted(x["cdc_lag_gauge_ms"] for x in self.sampler.samples
                        if a["t"] <= x["t"] <= b["t"] and x.get("cdc_lag_gauge_ms") is not None)
        return {"window_s": round(dt, 1), "written_rows_per_s": wrote / dt, "replicated_rows_per_s": rep / dt,
                "cdc_lag_gauge_ms_mean": sum(gauges) / len(gauges) if gauges else None,
                "cdc_cpu_s": cpu, "replicated_rows": rep,
                "machine_busy_pct": 100.0 * (b["machine_busy"] - a["machine_busy"]) /
                max(1, b["machine_total"] - a["machine_total"]) * (os.cpu_count() or 1),
                "bed_cpu_cores": {k: round((b["bed_cpu_s"][k] - a["bed_cpu_s"][k]) / dt, 3)
                                  for k in b["bed_cpu_s"] if a["bed_cpu_s"].get(k) is not None
                                  and b["bed_cpu_s"].get(k) is not None}}

    def pack_latency(self, phase):
        """milvus-cdc's own time per pack with changes over the phase's window, per stage
        (queued, intent, apply): mean and the histogram bucket bound holding p50 / p99, ms."""
        a, b = self.samples_between(*self.phases[phase]["window"])
        out = {}
        for stage, hb in (b.get("cdc_pack_latency_ms") or {}).items():
            ha = (a.get("cdc_pack_latency_ms") or {}).get(stage, {"count": 0, "sum": 0.0, "le": {}})
            n = hb["count"] - ha["count"]
            if n <= 0:
                continue
            cum = sorted((le, c - ha["le"].get(le, 0)) for le, c in hb["le"].items())
            bound = lambda q: next((le for le, c in cum if c >= q * n), None)
            out[stage] = {"packs": int(n), "mean_ms": (hb["sum"] - ha["sum"]) / n,
                          "p50_le_ms": bound(0.5), "p99_le_ms": bound(0.99)}
        return out

    def lag(self, phase):
        p = self.phases[phase]
        lo, hi = p.get("window", (p["t_start"], p["t_end"]))
        ms = [m for m in self.markers.results if m["phase"] == phase and lo <= m["acked"] <= hi]
        seen = [m["lag_s"] for m in ms if m["lag_s"] is not None]
        return {"markers": len(ms), "not_seen": len(ms) - len(seen),
                "p50_s": percentile(seen, 50), "p95_s": percentile(seen, 95), "p99_s": percentile(seen, 99),
                "max_s": max(seen) if seen else None}

    @staticmethod
    def cpu_figures(cpu_s, rows, seconds):
        if rows <= 0 or seconds <= 0:
            return {"cpu_s_per_million_rows": None, "cpu_pct_per_10k_rows_per_s": None}
        per_m = cpu_s / rows * 1e6
        # % of one core at 10 000 rows/s = cpu seconds per row * 10 000 * 100: the same number
        return {"cpu_s_per_million_rows": per_m, "cpu_pct_per_10k_rows_per_s": per_m}

    def report(self):
        out = {}
        for ph in ("direct", "direct_half"):
            if ph in self.phases:
                r = self.window_rates(ph)
                out[ph] = {**r, "rows": self.phases[ph]["rows"], "rows_on_target": self.phases[ph]["rows_on_target"],
                           "lag": self.lag(ph)}
        if "live" in self.phases:
            r = self.window_rates("live")
            p = self.phases["live"]
            out["live"] = {**r, **self.cpu_figures(r["cdc_cpu_s"], r["replicated_rows"], r["window_s"]),
                           "rows": p["rows"], "rows_on_target": p["rows_on_target"],
                           "backlog_at_end": p["backlog_at_end"], "catch_up_s": p["catch_up_s"], "lag": self.lag("live")}
        if "drain" in self.phases:
            p = self.phases["drain"]
            ss = [x for x in self.sampler.samples if p["resumed"] - 0.5 <= x["t"] <= p["caught_up"] + 1.5]
            coll = p["collection"]
            # steady rate: between 10 % and 90 % of the backlog (excludes the task restart and the tail)
            lo = next((x for x in ss if x["replicated"].get(coll, 0) >= 0.1 * p["rows"]), ss[0])
            hi = next((x for x in ss if x["replicated"].get(coll, 0) >= 0.9 * p["rows"]), ss[-1])
            dt = max(1e-9, hi["t"] - lo["t"])
            steady = (hi["replicated"].get(coll, 0) - lo["replicated"].get(coll, 0)) / dt
            cpu = ss[-1]["cdc_cpu_s"] - ss[0]["cdc_cpu_s"]
            total_s = p["caught_up"] - p["resumed"]
            out["drain"] = {"rows": p["rows"], "rows_on_target": p["rows_on_target"],
                            "written_rows_per_s": p["rows"] / (p["t_end"] - p["t_start"]),
                            "replicated_rows_per_s": steady, "drain_s": total_s,
                            "replicated_rows_per_s_incl_resume": p["rows"] / total_s, "cdc_cpu_s": cpu,
                            **self.cpu_figures(cpu, p["rows"], total_s)}
        if "half" in self.phases:
            r = self.window_rates("half")
            p = self.phases["half"]
            out["half"] = {**r, **self.cpu_figures(r["cdc_cpu_s"], r["replicated_rows"], r["window_s"]),
                           "rate": p["rate"], "rows": p["rows"], "rows_on_target": p["rows_on_target"],
                           "behind_schedule_max_s": p["behind_schedule_max_s"], "lag": self.lag("half"),
                           "pack_latency_ms": self.pack_latency("half")}
        if "backfill" in self.phases:
            p = self.phases["backfill"]
            ss = [x for x in self.sampler.samples if p["t_start"] - 0.5 <= x["t"] <= p["t_end"] + 0.5]
            secs = p["t_end"] - p["t_start"]
            out["backfill"] = {"rows": p["rows"], "rows_copied": p["rows_copied"], "rows_on_target": p["rows_on_target"],
                               "seconds": secs, "rows_per_s": p["rows_copied"] / secs,
                               "max_rss_mb": max((x["cdc_rss_kb"] or 0) for x in ss) / 1024.0 if ss else None,
                               "verify": p["verify"]}
        if "multi" in self.phases:
            out["multi"] = self.multi_report()
        for ph, p in self.phases.items():  # largest RSS sampled while the phase ran (or drained)
            if ph == "multi":
                continue
            end = p.get("caught_up", p["t_end"])
            ss = [x for x in self.sampler.samples if p["t_start"] <= x["t"] <= end + 1.5]
            out[ph]["max_rss_mb"] = max((x["cdc_rss_kb"] or 0) for x in ss) / 1024.0 if ss else None
            out[ph]["max_rss_anon_mb"] = max((x["cdc_anon_kb"] or 0) for x in ss) / 1024.0 if ss else None
        peak_kb = max((x["cdc_hwm_kb"] or 0) for x in self.sampler.samples)
        out["cdc_peak_rss_mb"] = peak_kb / 1024.0
        out["cdc_rss_file_mb"] = (self.sampler.samples[-1]["cdc_file_kb"] or 0) / 1024.0
        out["targets"] = self.check_targets(out)
        return out

    def check_targets(self, out):
        t = {}
        direct = out.get("direct", {}).get("written_rows_per_s")
        if direct:
            for ph in ("drain", "live"):
                if ph in out:
                    ratio = out[ph]["replicated_rows_per_s"] / direct
                    t[f"throughput_ratio_{ph}"] = {"value": ratio, "target": f">= {TARGETS['throughput_ratio']}",
                                                   "met": ratio >= TARGETS["throughput_ratio"]}
        if "half" in out and out["half"]["lag"]["p99_s"] is not None:
            v = out["half"]["lag"]["p99_s"]
            t["lag_p99_half_s"] = {"value": v, "target": f"<= {TARGETS['lag_p99_half_s']}",
                                   "met": v <= TARGETS["lag_p99_half_s"] and out["half"]["lag"]["not_seen"] == 0}
        if "direct_half" in out and out["direct_half"]["lag"]["p99_s"] is not None:
            v = out["direct_half"]["lag"]["p99_s"]  # context: TARGET alone, no milvus-cdc involved
            t["lag_p99_direct_half_s"] = {"value": v, "target": "(TARGET alone)", "met": v <= TARGETS["lag_p99_half_s"]}
        for ph in ("live", "drain", "half"):
            v = out.get(ph, {}).get("cpu_pct_per_10k_rows_per_s")
            if v is not None:
                t[f"cpu_pct_per_10k_{ph}"] = {"value": v, "target": f"<= {TARGETS['cpu_pct_per_10k']}",
                                              "met": v <= TARGETS["cpu_pct_per_10k"]}
        for key in ("cpu_ratio", "rss_ratio"):
            v = out.get("multi", {}).get(key)
            if v is not None:
                t[f"multi_{key}"] = {"value": v, "target": f"<= {TARGETS['multi_' + key]}",
                                     "met": v <= TARGETS["multi_" + key]}
        if "backfill" in out:
            b = out["backfill"]
            if direct:
                ratio = b["rows_per_s"] / direct
                t["backfill_ratio"] = {"value": ratio, "target": f">= {TARGETS['backfill_ratio']}",
                                       "met": ratio >= TARGETS["backfill_ratio"]}
            t["backfill_rss_mb"] = {"value": b["max_rss_mb"], "target": f"<= {TARGETS['backfill_rss_mb']}",
                                    "met": b["max_rss_mb"] <= TARGETS["backfill_rss_mb"]}
            v = b["verify"]["keys"]["rows_per_s"]
            t["verify_keys_rows_per_s"] = {"value": v, "target": f">= {TARGETS['verify_keys_rows_per_s']:.0f}",
                                           "met": v >= TARGETS["verify_keys_rows_per_s"] and b["verify"]["keys"]["equal"]}
        v = out["cdc_peak_rss_mb"]
        t["peak_rss_mb"] = {"value": v, "target": f"<= {TARGETS['rss_mb']}", "met": v <= TARGETS["rss_mb"]}
        return t


def fmt(v, unit="", digits=0):
    if v is None:
        return "-"
    return f"{v:,.{digits}f}{unit}"


def print_table(res):
    s = res["summary"]
    print()
    print(f"{'phase':<11} {'written rows/s':>15} {'replicated rows/s':>18} {'lag p50/p95/p99 (ms)':>22} "
          f"{'cdc CPU s/Mrows':>16} {'cdc RSS max MB':>15} {'machine busy':>13}")
    for ph in PHASES:
        if ph not in s:
            continue
        r = s[ph]
        lag = r.get("lag")
        lag_s = "/".join(fmt(lag[k] * 1000 if lag[k] is not None else None) for k in ("p50_s", "p95_s", "p99_s")) \
            if lag else "-"
        print(f"{ph:<11} {fmt(r.get('written_rows_per_s')):>15} "
              f"{fmt(r.get('replicated_rows_per_s')) if not ph.startswith('direct') else '-':>18} {lag_s:>22} "
              f"{fmt(r.get('cpu_s_per_million_rows'), digits=2):>16} {fmt(r.get('max_rss_mb'), digits=1):>15} "
              f"{fmt(r.get('machine_busy_pct'), '%'):>13}")
    print("(cdc CPU seconds per million rows = % of one core per 10 000 rows/s; machine busy: % of one core)")
    if "backfill" in s:
        b = s["backfill"]
        print(f"backfill: {b['rows_copied']:,} rows copied in {b['seconds']:.1f} s = {b['rows_per_s']:,.0f} rows/s, "
              f"milvus-cdc RSS max {b['max_rss_mb']:.1f} MB; verify " +
              ", ".join(f"{lv} {v['rows_per_s']:,.0f} rows/s (equal {v['equal']})" for lv, v in b["verify"].items()))
    print(f"milvus-cdc peak RSS (VmHWM): {s['cdc_peak_rss_mb']:.1f} MB, of which shared libraries and binary "
          f"(RssFile) {s['cdc_rss_file_mb']:.1f} MB")
    for stage, v in s.get("half", {}).get("pack_latency_ms", {}).items():
        print(f"half: milvus-cdc per pack, {stage:<6} mean {v['mean_ms']:6.1f} ms, p50 <= {fmt(v['p50_le_ms'])} ms, "
              f"p99 <= {fmt(v['p99_le_ms'])} ms ({v['packs']} packs)")
    print()
    print(f"{'target':<26} {'measured':>10} {'target':>14}  result")
    for k, t in s["targets"].items():
        result = "-" if t["target"].startswith("(") else "met" if t["met"] else "MISSED"
        print(f"{k:<26} {t['value']:>10.3f} {t['target']:>14}  {result}")
    print()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--window", type=float, default=120, help="measured seconds per phase (default 120)")
    ap.add_argument("--warmup", type=float, default=10, help="seconds written before each window (default 10)")
    ap.add_argument("--phases", default=",".join(PHASES), help="subset of " + ",".join(PHASES))
    ap.add_argument("--rate", type=float, default=0, help="live phase rows/s; 0 = flat out (default)")
    ap.add_argument("--half-fraction", type=float, default=0.5, help="half phase rate / live replicated rate")
    ap.add_argument("--half-rate", type=float, default=0, help="half phase rows/s (overrides --half-fraction)")
    ap.add_argument("--batch", type=int, default=1000, help="rows per insert call (default 1000)")
    ap.add_argument("--dim", type=int, default=128, help="vector dimension (default 128)")
    ap.add_argument("--shards", type=int, default=1, help="shards per collection (default 1)")
    ap.add_argument("--marker-every", type=float, default=0.1, help="seconds between marker rows (default 0.1)")
    ap.add_argument("--poll-interval", type=float, default=0.02, help="marker query interval, s (default 0.02)")
    ap.add_argument("--consistency", default="Eventually", help="marker query consistency (default Eventually)")
    ap.add_argument("--cdc-binary", default=os.environ.get("CDC_BINARY", str(REPO / "build" / "milvus-cdc")))
    ap.add_argument("--target", choices=("target", "replica"), default="target",
                    help="the bed Milvus milvus-cdc writes to: TARGET (writable, write_mode api) or REPLICA "
                         "(a standby with ttMsgEnabled=false, write_mode replicate; run.sh --replica starts it)")
    ap.add_argument("--out", required=True, help="result directory (result.json, cdc/ with the server log)")
    ap.add_argument("--keep", action="store_true", help="keep the bench collections")
    ap.add_argument("--backfill-rows", type=int, default=1_000_000, help="rows copied by the backfill phase")
    ap.add_argument("--source-option", action="append", default=[], metavar="KEY=VALUE",
                    help="a sourceConfig key for milvus-cdc, e.g. earlyApply=false (repeatable)")
    ap.add_argument("--multi-collections", type=int, default=20, help="collections (and tasks) of the multi phase")
    ap.add_argument("--multi-rate", type=float, default=5000, help="multi phase rows/s over all its collections")
    args = ap.parse_args()
    args.phases = [p for p in args.phases.split(",") if p]
    unknown = set(args.phases) - set(PHASES)
    if unknown:
        ap.error(f"unknown phases: {', '.join(sorted(unknown))}")

    missing = [k for k in BED_KEYS if not os.environ.get(k)]
    if missing:
        raise SystemExit(f"bed settings missing from the environment ({', '.join(missing)}): run bench/run.sh")
    bed = {k: os.environ[k] for k in BED_KEYS}
    bed["TARGET_NAME"] = "TARGET"
    if args.target == "replica":  # every phase writes to REPLICA instead, through ReplicateMessage
        if not os.environ.get("REPLICA_MILVUS_URI"):
            raise SystemExit("REPLICA is not running: use bench/run.sh --replica")
        if set(args.phases) & {"direct", "direct_half", "backfill"}:
            ap.error("a standby takes no plain inserts: with --target replica run only live, drain and half")
        bed["TARGET_MILVUS_URI"] = os.environ["REPLICA_MILVUS_URI"]
        bed["TARGET_NAME"] = "REPLICA"
    bed["SOURCE_MQ"] = os.environ.get("SOURCE_MQ", "kafka")
    queue_key = "PULSAR_URL" if bed["SOURCE_MQ"] == "pulsar" else "KAFKA_BROKERS"
    if not os.environ.get(queue_key):
        raise SystemExit(f"{queue_key} missing from the environment: run bench/run.sh")
    bed[queue_key] = os.environ[queue_key]
    out_dir = Path(args.out).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)

    info = machine_info()
    info["time_tick_ms"] = bed_time_tick_ms(os.environ.get("TESTBED_RUN_DIR", ""))
    info["source_mq"] = bed["SOURCE_MQ"]
    log(f"the bed's Milvus time tick: {info['time_tick_ms']} ms")
    t_wall = time.time()
    bench = Bench(args, bed, out_dir)
    summary = bench.run()
    info["loadavg_at_end"] = os.getloadavg()
    t0 = bench.sampler.samples[0]["t"]
    result = {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(t_wall)),
        "machine": info,
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "out"},
        "row_bytes": bench.batches.row_bytes,
        "summary": summary,
        "phases": {k: {kk: (vv - t0 if kk in ("t_start", "t_end", "resumed", "caught_up") else
                            [w - t0 for w in vv] if kk == "window" else vv) for kk, vv in v.items()}
                   for k, v in bench.phases.items()},
        "samples": [{**x, "t": x["t"] - t0} for x in bench.sampler.samples],
        "markers": [{**m, "acked": m["acked"] - t0} for m in bench.markers.results],
    }
    (out_dir / "result.json").write_text(json.dumps(result, indent=1) + "\n")
    print_table(result)
    log(f"results: {out_dir / 'result.json'}")
    return 0


def bed_time_tick_ms(run_dir):
    """proxy.timeTickInterval of the bed's SOURCE, as rendered by testbed/milvus_config.py."""
    conf = Path(run_dir) / "milvus-source" / "conf" / "milvus.yaml"
    try:
        m = re.search(r"^proxy:\n(?:[ ].*\n)*?  timeTickInterval: *(\d+)", conf.read_text(), re.M)
        return int(m.group(1)) if m else None
    except OSError:
        return None


if __name__ == "__main__":
    sys.exit(main())
