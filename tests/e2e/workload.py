"""Source workloads and target comparisons shared by the capture and replication tests."""
import random

from pymilvus import Collection, CollectionSchema, DataType, FieldSchema, Partition, db, utility

DIM = 8


def schema(pk_type="int64", dim=DIM):
    if pk_type == "int64":
        pk = FieldSchema("pk", DataType.INT64, is_primary=True, auto_id=False)
    else:
        pk = FieldSchema("pk", DataType.VARCHAR, is_primary=True, auto_id=False, max_length=64)
    return CollectionSchema([
        pk,
        FieldSchema("vec", DataType.FLOAT_VECTOR, dim=dim),
        FieldSchema("title", DataType.VARCHAR, max_length=128),
        FieldSchema("meta", DataType.JSON),
    ], description="cdc e2e", enable_dynamic_field=True)


def rows(pks, dim=DIM, tag="v1"):
    rnd = random.Random(hash((tuple(pks[:3]), tag)) & 0xffff)
    return [{"pk": pk, "vec": [rnd.random() for _ in range(dim)], "title": f"{tag}-{pk}",
             "meta": {"n": str(pk), "tag": tag}, "extra": f"dyn-{tag}"} for pk in pks]


def use_db(alias, name):
    db.using_database(name, using=alias)


def create_collection(alias, name, pk_type="int64", shards=2, dim=DIM):
    return Collection(name, schema(pk_type, dim), using=alias, shards_num=shards, consistency_level="Strong")


def all_rows(coll, pk_type="int64", fields=("pk", "vec", "title", "meta", "extra"), consistency="Strong"):
    """Every row by primary key (Strong consistency by default); needs a loaded collection."""
    expr = "pk >= 0" if pk_type == "int64" else 'pk != ""'
    out = {}
    res = coll.query(expr, output_fields=list(fields), consistency_level=consistency, timeout=120, limit=16384)
    for r in res:
        row = {k: r.get(k) for k in fields}
        if row.get("vec") is not None:
            row["vec"] = [round(float(x), 5) for x in row["vec"]]
        out[r["pk"]] = row
    return out


def ensure_index_and_load(coll):
    if not coll.has_index():
        coll.create_index("vec", {"index_type": "FLAT", "metric_type": "L2", "params": {}}, timeout=120)
    coll.load(timeout=300)


def field_summary(coll):
    s = coll.schema
    return ([(f.name, str(f.dtype), f.is_primary, f.params.get("dim"), f.params.get("max_length"))
             for f in s.fields], s.enable_dynamic_field)


# ---------------------------------------------------------------------- write stream (fault tests)

def pk_expr(keys):
    return "pk in [%s]" % ",".join(('"%s"' % k) if isinstance(k, str) else str(k) for k in keys)


class StreamTarget:
    """One collection a WriteStream writes to: its keys so far and the ones alive now."""

    def __init__(self, coll, pk_type, make_rows=None):
        self.coll, self.pk_type = coll, pk_type
        self.make_rows = make_rows or rows  # make_rows(keys, tag=...) -> row dicts
        self.next_id = 0
        self.universe = set()   # every key ever written (insert or upsert)
        self.live = set()       # keys that exist on SOURCE after the last acknowledged call
        self.deleted = set()

    def new_keys(self, n):
        ids = range(self.next_id, self.next_id + n)
        self.next_id += n
        return list(ids) if self.pk_type == "int64" else ["k%08d" % i for i in ids]


class WriteStream:
    """A background stream of inserts, deletes and upserts on SOURCE, over several collections.

    Each cycle, per collection: insert `insert_n` new keys, delete `delete_n` live keys, upsert
    `upsert_n` keys (half live ones with a new version, half deleted or new ones). A call that
    fails (the bed is being disturbed) is retried until it succeeds; a failed insert is retried as
    an upsert, so a timed-out insert that did reach SOURCE is not doubled there. Everything is
    drawn from a seeded random.Random, so a seed reproduces the operations (not their timing).
    """

    def __init__(self, colls, seed=1, insert_n=40, delete_n=8, upsert_n=8, pause_s=0.25,
                 call_timeout=20, give_up_s=300, log=print):
        import threading
        # (collection, pk_type) pairs, or StreamTargets made by the caller
        self.targets = [c if isinstance(c, StreamTarget) else StreamTarget(*c) for c in colls]
        self.rnd = random.Random(seed)
        self.insert_n, self.delete_n, self.upsert_n, self.pause_s = insert_n, delete_n, upsert_n, pause_s
        self.call_timeout, self.give_up_s, self.log = call_timeout, give_up_s, log
        self.cycles = 0
        self.counts = {"insert": 0, "delete": 0, "upsert": 0, "retries": 0}
        self.error = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="write-stream", daemon=True)

    # -- control
    def start(self):
        self._thread.start()
        return self

    def stop(self, timeout=600):
        """Stops after the cycle in progress; raises if the stream failed."""
        self._stop.set()
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the write stream did not stop"
        if self.error:
            raise AssertionError("the write stream failed: %r" % (self.error,))

    def alive(self):
        return self._thread.is_alive()

    def wait_cycles(self, n, timeout=300):
        """Waits until `n` more cycles are done (the stream is making progress)."""
        import time
        goal, end = self.cycles + n, time.monotonic() + timeout
        while self.cycles < goal:
            if self.error:
                raise AssertionError("the write stream failed: %r" % (self.error,))
            assert time.monotonic() < end, "the write stream did %d of %d cycles in %ss" % (
                self.cycles - goal + n, n, timeout)
            time.sleep(0.2)

    def summary(self):
        return dict(self.counts, cycles=self.cycles,
                    keys={t.coll.name: len(t.universe) for t in self.targets},
                    live={t.coll.name: len(t.live) for t in self.targets})

    # -- the stream
    def _call(self, what, fn, retry_fn=None):
        import time
        end = time.monotonic() + self.give_up_s
        first = True
        while True:
            try:
                return (fn if first or retry_fn is None else retry_fn)()
            except Exception as e:  # noqa: BLE001 - the bed is being disturbed on purpose
                if time.monotonic() > end:
                    raise AssertionError("%s kept failing for %ss: %s" % (what, self.give_up_s, e))
                self.counts["retries"] += 1
                if first or self.counts["retries"] % 20 == 0:
                    self.log("[stream] %s failed, retrying: %s" % (what, str(e).splitlines()[0][:200]))
                first = False
                time.sleep(1)

    def _cycle(self):
        tag = "c%d" % self.cycles
        for t in self.targets:
            c, to = t.coll, self.call_timeout
            keys = t.new_keys(self.insert_n)
            t.universe.update(keys)
            data = t.make_rows(keys, tag=tag)
            self._call("insert into %s" % c.name, lambda: c.insert(data, timeout=to),
                       lambda: c.upsert(data, timeout=to))
            t.live.update(keys)
            self.counts["insert"] += len(keys)

            if len(t.live) > self.delete_n * 4:
                dels = self.rnd.sample(sorted(t.live), self.delete_n)
                self._call("delete from %s" % c.name, lambda: c.delete(pk_expr(dels), timeout=to))
                t.live.difference_update(dels)
                t.deleted.update(dels)
                self.counts["delete"] += len(dels)

            half = self.upsert_n // 2
            ups = self.rnd.sample(sorted(t.live), min(half, len(t.live)))
            back = self.rnd.sample(sorted(t.deleted), min(half // 2, len(t.deleted)))
            ups += back + t.new_keys(self.upsert_n - len(ups) - len(back))
            t.universe.update(ups)
            data = t.make_rows(ups, tag=tag + "u")
            self._call("upsert into %s" % c.name, lambda: c.upsert(data, timeout=to))
            t.live.update(ups)
            t.deleted.difference_update(ups)
            self.counts["upsert"] += len(ups)
        self.cycles += 1

    def _run(self):
        try:
            while not self._stop.is_set():
                self._cycle()
                self._stop.wait(self.pause_s)
        except BaseException as e:  # noqa: BLE001 - reported by stop()
            self.error = e
