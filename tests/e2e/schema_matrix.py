"""The schema matrix: one collection per schema shape Milvus 2.3 allows, the writes made to it
on SOURCE, and the comparison of TARGET with SOURCE an operator would make (metadata, every row,
count(*), and for partition-key collections a filtered search and the rows per `_default_N`).

Used by test_schema_matrix.py. Everything reads through a pymilvus connection alias bound to the
test's own database; metadata is read with the raw gRPC calls (pinned pymilvus 2.3.7) because the
ORM's dicts drop some of it (element type, partition-key flag, properties, index parameters).

Index types probed on the bed's Milvus 2.3.5 (the milvus-lite 2.3.5 build), 2 000 flushed rows:
  built, loaded and searched: FLAT, IVF_FLAT, IVF_SQ8, IVF_PQ, HNSW, SCANN, AUTOINDEX (float);
  BIN_FLAT, BIN_IVF_FLAT (binary, HAMMING and JACCARD); STL_SORT (numeric), Trie (VARCHAR).
  refused:
    DISKANN      CreateIndex is accepted but the build never finishes: the index node retries
                 every 3 s with "failed to create index, C Runtime Exception: bad_function_call"
                 (segcoreCode=2001), and pymilvus's create_index times out waiting for it
    GPU_IVF_FLAT same as DISKANN (no GPU build)
    GPU_CAGRA    "invalid index type: GPU_CAGRA"
    INVERTED     on INT32: "index type not match ... [expected=STL_SORT][actual=INVERTED]" (2.4+)
    scalar index on BOOL, JSON or ARRAY: "create index on Bool|JSON|Array field is not supported"
  Segments under 1 024 rows are not indexed at all (they are searched as raw data), so the small
  collections below exercise the index metadata and its replication, not the index builds.
"""
import json
import random
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field as dc_field

from pymilvus import Collection, CollectionSchema, DataType, FieldSchema, connections
from pymilvus.grpc_gen import common_pb2, milvus_pb2, schema_pb2

ROWS = 200        # inserted per collection (auto-id ones too)
DELETED = 20      # deleted by primary-key expression
UPSERTED = 20     # 10 live rows with a new version, 5 deleted ones back, 5 new keys
KEYS = 40         # distinct partition-key values

ARRAY_ELEMENTS = (DataType.BOOL, DataType.INT8, DataType.INT16, DataType.INT32, DataType.INT64,
                  DataType.FLOAT, DataType.DOUBLE, DataType.VARCHAR)


# ---------------------------------------------------------------------------------- the cases

@dataclass
class Case:
    """One collection of the matrix. `before`: created, indexed and loaded before the task starts
    (the task's start-up path copies it); otherwise after (the live path). Rows are always
    written after the task started: a new task copies changes from its creation on."""
    name: str
    fields: list
    description: str = ""
    dynamic: bool = False
    shards: int = 1
    consistency: str = "Bounded"
    num_partitions: int = 0            # > 0 only with a partition-key field
    properties: dict = dc_field(default_factory=dict)
    altered: dict = dc_field(default_factory=dict)    # properties set by AlterCollection after creation
    partitions: tuple = ()             # user partitions; a quarter of the rows go to the first
    indexes: tuple = ()                # (field, index params, index name)
    before: bool = False

    def field(self, name):
        return next(f for f in self.fields if f.name == name)

    @property
    def pk(self):
        return next(f for f in self.fields if f.is_primary)

    @property
    def auto_id(self):
        return bool(self.pk.auto_id)

    @property
    def partition_key(self):
        return next((f for f in self.fields if getattr(f, "is_partition_key", False)), None)

    @property
    def vector(self):
        return next(f for f in self.fields if f.dtype in (DataType.FLOAT_VECTOR, DataType.BINARY_VECTOR))

    def schema(self):
        return CollectionSchema(self.fields, description=self.description, enable_dynamic_field=self.dynamic)


def _pk(kind, name="pk", auto_id=False):
    if kind == "int64":
        return FieldSchema(name, DataType.INT64, is_primary=True, auto_id=auto_id, description="primary key")
    return FieldSchema(name, DataType.VARCHAR, is_primary=True, auto_id=False, max_length=48,
                       description="primary key")


def _fvec(dim=8, name="vec"):
    return FieldSchema(name, DataType.FLOAT_VECTOR, dim=dim, description="float vector, dim %d" % dim)


def _bvec(dim=64, name="bvec"):
    return FieldSchema(name, DataType.BINARY_VECTOR, dim=dim, description="binary vector, dim %d" % dim)


def _tag():
    return FieldSchema("tag", DataType.VARCHAR, max_length=64, description="a label")


def _every_scalar():
    """Every 2.3 scalar type, then ARRAY with each element type 2.3 allows."""
    out = [
        FieldSchema("b", DataType.BOOL, description="bool"),
        FieldSchema("i8", DataType.INT8, description="int8"),
        FieldSchema("i16", DataType.INT16, description="int16"),
        FieldSchema("i32", DataType.INT32, description="int32"),
        FieldSchema("i64", DataType.INT64, description="int64"),
        FieldSchema("f", DataType.FLOAT, description="float"),
        FieldSchema("d", DataType.DOUBLE, description="double"),
        FieldSchema("s", DataType.VARCHAR, max_length=96, description="varchar"),
        FieldSchema("j", DataType.JSON, description="json"),
    ]
    for i, et in enumerate(ARRAY_ELEMENTS):
        extra = {"max_length": 24} if et == DataType.VARCHAR else {}
        out.append(FieldSchema("arr_%s" % et.name.lower(), DataType.ARRAY, element_type=et,
                               max_capacity=4 + i, description="array of %s" % et.name.lower(), **extra))
    return out


def _ivf(metric="L2", nlist=16, name="vec_ivf_flat", fld="vec"):
    return (fld, {"index_type": "IVF_FLAT", "metric_type": metric, "params": {"nlist": nlist}}, name)


def _vector_index_case(index_type, params, metric, pk="int64", dim=16, **kw):
    return Case("ix_" + index_type.lower(), [_pk(pk), _tag(), _fvec(dim)],
                description="float vectors indexed with " + index_type,
                indexes=(("vec", {"index_type": index_type, "metric_type": metric, "params": params},
                          "vec_" + index_type.lower()),), **kw)


def _partition_key_case(key, pk, num_partitions, **kw):
    key_field = (FieldSchema("key", DataType.INT64, is_partition_key=True, description="partition key")
                 if key == "int64" else
                 FieldSchema("key", DataType.VARCHAR, max_length=32, is_partition_key=True,
                             description="partition key"))
    key_index = ("key", {"index_type": "STL_SORT" if key == "int64" else "Trie"}, "key_" + key)
    return Case("pkey_%s_key_%s_pk" % (key, pk), [_pk(pk), key_field, _tag(), _fvec(8)],
                description="partition key %s, primary key %s" % (key, pk), num_partitions=num_partitions,
                indexes=(_ivf(nlist=8), key_index), **kw)


CASES = [
    # every scalar type, INT64 key, dynamic field, 4 shards, a user partition, scalar indexes
    Case("scalars_int64_pk", [_pk("int64")] + _every_scalar() + [_fvec(8)],
         description="every scalar type, int64 primary key", dynamic=True, shards=4, consistency="Strong",
         partitions=("p_extra",), properties={"collection.ttl.seconds": "86400"},
         indexes=(_ivf(), ("i32", {"index_type": "STL_SORT"}, "i32_sort"),
                  ("d", {"index_type": "STL_SORT"}, "d_sort"), ("s", {"index_type": "Trie"}, "s_trie"))),
    # the same with a VARCHAR key, no dynamic field, copied by the task's start-up
    Case("scalars_varchar_pk", [_pk("varchar", "id")] + _every_scalar() + [_fvec(8)],
         description="every scalar type, varchar primary key", shards=1, consistency="Session",
         partitions=("p_extra", "p_other"),
         indexes=(("vec", {"index_type": "HNSW", "metric_type": "IP", "params": {"M": 8, "efConstruction": 32}},
                   "vec_hnsw"), ("id", {"index_type": "Trie"}, "id_trie"), ("i64", {"index_type": "STL_SORT"}, "i64_sort")),
         before=True),
    # auto-id: TARGET has auto_id off so the keys stay the same; 2.3 refuses upserts here
    Case("auto_id_dynamic", [_pk("int64", auto_id=True), _tag(), FieldSchema("d", DataType.DOUBLE), _fvec(16)],
         description="auto id, dynamic field", dynamic=True, shards=4, consistency="Eventually",
         indexes=(("vec", {"index_type": "AUTOINDEX", "metric_type": "COSINE", "params": {}}, "vec_auto"),)),
    Case("auto_id_binary", [_pk("int64", auto_id=True), _bvec(64), FieldSchema("i16", DataType.INT16)],
         description="auto id, binary vectors", shards=1,
         indexes=(("bvec", {"index_type": "BIN_FLAT", "metric_type": "HAMMING", "params": {}}, "bvec_flat"),),
         before=True),
    # binary vectors
    Case("bin_flat", [_pk("int64"), _bvec(64), _tag()], description="binary vectors, BIN_FLAT", shards=4,
         dynamic=True, indexes=(("bvec", {"index_type": "BIN_FLAT", "metric_type": "JACCARD", "params": {}},
                                 "bvec_bin_flat"),)),
    Case("bin_ivf_flat", [_pk("varchar"), _bvec(128), _tag()], description="binary vectors, BIN_IVF_FLAT",
         consistency="Strong", partitions=("p_bin",),
         indexes=(("bvec", {"index_type": "BIN_IVF_FLAT", "metric_type": "HAMMING", "params": {"nlist": 16}},
                   "bvec_bin_ivf"),), before=True),
    # float-vector index types the bed builds (see the module comment for the refused ones)
    _vector_index_case("FLAT", {}, "L2", consistency="Session"),
    _vector_index_case("IVF_FLAT", {"nlist": 16}, "IP", pk="varchar", shards=4),
    _vector_index_case("IVF_SQ8", {"nlist": 16}, "L2", dynamic=True),
    _vector_index_case("IVF_PQ", {"nlist": 16, "m": 4, "nbits": 8}, "L2", dim=32),
    _vector_index_case("HNSW", {"M": 8, "efConstruction": 64}, "COSINE", shards=4, before=True,
                       properties={"collection.ttl.seconds": "604800"}, altered={"collection.ttl.seconds": "7200"}),
    _vector_index_case("SCANN", {"nlist": 16, "with_raw_data": True}, "L2", pk="varchar", consistency="Strong"),
    _vector_index_case("AUTOINDEX", {}, "IP", dynamic=True, consistency="Eventually",
                       altered={"collection.ttl.seconds": "3600"}),
    # the four partition-key combinations
    _partition_key_case("int64", "int64", 16, shards=4, consistency="Strong"),
    _partition_key_case("int64", "varchar", 8, dynamic=True),
    _partition_key_case("varchar", "int64", 8, before=True, consistency="Session"),
    _partition_key_case("varchar", "varchar", 16, shards=4, dynamic=True),
]
CASE_NAMES = [c.name for c in CASES]
CASE_BY_NAME = {c.name: c for c in CASES}


# ---------------------------------------------------------------------------------- rows

def _rnd(*parts):
    return random.Random(zlib.crc32(repr(parts).encode()))


def _pk_value(case, i):
    return i if case.pk.dtype == DataType.INT64 else "k-%05d" % i


def _scalar(dtype, rnd, i, v, max_length=64):
    if dtype == DataType.BOOL:
        return rnd.random() < 0.5
    if dtype == DataType.INT8:
        return rnd.randint(-128, 127)
    if dtype == DataType.INT16:
        return rnd.randint(-32768, 32767)
    if dtype == DataType.INT32:
        return rnd.randint(-2 ** 31, 2 ** 31 - 1)
    if dtype == DataType.INT64:
        return rnd.randint(-2 ** 63, 2 ** 63 - 1)
    if dtype == DataType.FLOAT:
        return rnd.uniform(-1e6, 1e6)
    if dtype == DataType.DOUBLE:
        return rnd.uniform(-1e12, 1e12)
    if dtype == DataType.VARCHAR:
        text = "v%d-%d é中✓ " % (i, v) + "x" * rnd.randint(0, 40)
        return text.encode()[:max_length].decode(errors="ignore")  # max_length counts bytes
    raise AssertionError("no generator for %s" % dtype)


def make_row(case, i, version):
    """Row `i` of `case` in version `version` (an upsert writes a new version)."""
    rnd = _rnd(case.name, i, version)
    row = {}
    for f in case.fields:
        if f.is_primary:
            if not f.auto_id:
                row[f.name] = _pk_value(case, i)
        elif getattr(f, "is_partition_key", False):
            k = (i * 7 + version * 3) % KEYS  # spread over KEYS keys; an upsert may move the row
            row[f.name] = k if f.dtype == DataType.INT64 else "key-%02d" % k
        elif f.dtype == DataType.FLOAT_VECTOR:
            row[f.name] = [rnd.uniform(-1, 1) for _ in range(f.params["dim"])]
        elif f.dtype == DataType.BINARY_VECTOR:
            row[f.name] = bytes(rnd.getrandbits(8) for _ in range(f.params["dim"] // 8))
        elif f.dtype == DataType.JSON:
            row[f.name] = {"i": i, "v": version, "name": "row %d" % i, "ratio": i / 7,
                           "nested": {"list": [1, "two", 3.5, None, True], "empty": {}},
                           "tags": ["t%d" % (i % 3)] * (i % 4)}
        elif f.dtype == DataType.ARRAY:
            et = f.element_type
            n = (i + version) % (f.params["max_capacity"] + 1)  # empty and full arrays too
            row[f.name] = [_scalar(et, rnd, i, version, f.params.get("max_length", 24)) for _ in range(n)]
        else:
            row[f.name] = _scalar(f.dtype, rnd, i, version, f.params.get("max_length", 64))
    if case.dynamic:  # dynamic keys of several types, not on every row
        row["dyn_str"] = "dynamic %d v%d" % (i, version)
        if i % 2:
            row["dyn_num"] = i * 1.5
        if i % 3:
            row["dyn_obj"] = {"a": [i, version], "b": {"c": "deep"}}
    return row


def pk_expr(case, keys):
    name = case.pk.name
    if case.pk.dtype == DataType.INT64:
        return "%s in [%s]" % (name, ",".join(str(k) for k in keys))
    return "%s in [%s]" % (name, ",".join(json.dumps(k) for k in keys))


def all_expr(case):
    return "%s >= 0" % case.pk.name if case.pk.dtype == DataType.INT64 else '%s != ""' % case.pk.name


def write(case, coll):
    """Inserts ROWS rows (a quarter into the first user partition), deletes DELETED by primary
    key, upserts UPSERTED (not on auto-id collections). Returns the primary keys alive."""
    rows = [make_row(case, i, 0) for i in range(ROWS)]
    split = ROWS * 3 // 4 if case.partitions else ROWS
    keys = list(coll.insert(rows[:split], timeout=60).primary_keys)
    for start in range(split, ROWS, 25):
        keys += coll.insert(rows[start:start + 25], partition_name=case.partitions[0], timeout=60).primary_keys
    assert len(keys) == ROWS, (case.name, len(keys))
    deleted = keys[5:5 + DELETED // 2] + keys[-DELETED // 2:]     # some from the partition too
    coll.delete(pk_expr(case, deleted), timeout=60)
    gone = set(deleted)
    alive = [k for k in keys if k not in gone]
    if not case.auto_id:
        back = deleted[:5]
        new = list(range(ROWS, ROWS + 5))
        ups = [make_row(case, i, 1) for i in list(range(20, 30)) + [keys.index(k) for k in back] + new]
        coll.upsert(ups, timeout=60)
        alive += back + [_pk_value(case, i) for i in new]
    return alive


# ---------------------------------------------------------------------------------- reading

def _stub(alias):
    return connections._fetch_handler(alias)._stub  # pinned pymilvus 2.3.7


def _check(status, what):
    if status.error_code != 0 or getattr(status, "code", 0) not in (0, 200):
        raise LookupError("%s: %s" % (what, status.reason))


def describe(alias, db, name):
    """What an operator compares besides the rows: schema, shards, consistency, properties,
    partitions, indexes, load state. Dicts, so two sides compare with ==."""
    stub = _stub(alias)
    d = stub.DescribeCollection(milvus_pb2.DescribeCollectionRequest(db_name=db, collection_name=name), timeout=30)
    _check(d.status, "DescribeCollection %s" % name)
    fields = []
    for f in d.schema.fields:
        fields.append({
            "name": f.name, "type": schema_pb2.DataType.Name(f.data_type),
            "params": {kv.key: kv.value for kv in f.type_params},
            "element_type": schema_pb2.DataType.Name(f.element_type) if f.data_type == schema_pb2.Array else None,
            "primary_key": f.is_primary_key, "auto_id": f.autoID, "partition_key": f.is_partition_key,
            "dynamic": f.is_dynamic, "description": f.description,
        })
    p = stub.ShowPartitions(milvus_pb2.ShowPartitionsRequest(db_name=db, collection_name=name), timeout=30)
    _check(p.status, "ShowPartitions %s" % name)
    ix = stub.DescribeIndex(milvus_pb2.DescribeIndexRequest(db_name=db, collection_name=name), timeout=30)
    indexes = {}
    if ix.status.error_code == 0 and getattr(ix.status, "code", 0) in (0, 200):
        for i in ix.index_descriptions:
            params = {kv.key: kv.value for kv in i.params}
            if "params" in params:  # a JSON object: compare its value, not its spelling
                params["params"] = json.loads(params["params"])
            indexes[i.index_name] = {"field": i.field_name, "params": params}
    elif "index not found" not in ix.status.reason:
        _check(ix.status, "DescribeIndex %s" % name)
    ls = stub.GetLoadState(milvus_pb2.GetLoadStateRequest(db_name=db, collection_name=name), timeout=30)
    _check(ls.status, "GetLoadState %s" % name)
    return {
        "description": d.schema.description,
        "fields": fields,
        "enable_dynamic_field": d.schema.enable_dynamic_field,
        "shards_num": d.shards_num,
        "consistency_level": common_pb2.ConsistencyLevel.Name(d.consistency_level),
        "properties": {kv.key: kv.value for kv in d.properties},
        "num_partitions": d.num_partitions,
        "partitions": sorted(p.partition_names),
        "indexes": indexes,
        "load_state": common_pb2.LoadState.Name(ls.state),
    }


def _norm(value, dtype, element_type=None):
    if value is None:
        return None
    if dtype == DataType.FLOAT:
        return round(float(value), 5)
    if dtype == DataType.FLOAT_VECTOR:
        return [round(float(x), 5) for x in value]
    if dtype == DataType.BINARY_VECTOR:  # pymilvus returns [b"..."]
        return b"".join(value) if isinstance(value, list) else bytes(value)
    if dtype == DataType.ARRAY:
        return [_norm(x, element_type) for x in value]
    return value


def read_rows(case, coll):
    """{primary key: {field: value}} for every row (schema fields and dynamic keys)."""
    res = coll.query(all_expr(case), output_fields=["*"], consistency_level="Strong", limit=16384, timeout=60)
    types = {f.name: (f.dtype, getattr(f, "element_type", None)) for f in case.fields}
    out = {}
    for r in res:
        out[r[case.pk.name]] = {k: _norm(v, *types[k]) if k in types else v for k, v in r.items()}
    return out


def count_star(case, coll):
    res = coll.query(all_expr(case), output_fields=["count(*)"], consistency_level="Strong", timeout=60)
    return res[0]["count(*)"]


def partition_rows(alias, db, name, partitions):
    """Row count per partition (GetPartitionStatistics: complete after a flush; deleted rows still count)."""
    stub, out = _stub(alias), {}
    for p in partitions:
        r = stub.GetPartitionStatistics(milvus_pb2.GetPartitionStatisticsRequest(
            db_name=db, collection_name=name, partition_name=p), timeout=30)
        _check(r.status, "GetPartitionStatistics %s.%s" % (name, p))
        out[p] = int({kv.key: kv.value for kv in r.stats}.get("row_count", -1))
    return out


def key_searches(case, coll, rows):
    """For three partition-key values: the primary keys a search filtered on that key returns."""
    key = case.partition_key.name
    vec = case.vector.name
    metric = next(p for f, p, _ in case.indexes if f == vec)["metric_type"]
    out = {}
    for pk in sorted(rows)[:3]:
        k = rows[pk][key]
        res = coll.search([rows[pk][vec]], vec, {"metric_type": metric, "params": {"nprobe": 8}},
                          limit=100, expr="%s == %s" % (key, json.dumps(k)),
                          consistency_level="Strong", timeout=60)
        out[k] = sorted(res[0].ids)
    return out


# ---------------------------------------------------------------------------------- comparing

def dict_diff(a, b, path=""):
    """Paths where a (SOURCE, or what TARGET should show) and b (TARGET) differ: 'path: a != b'."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b), key=str):
            if k not in b:
                out.append("%s.%s: only on SOURCE (%r)" % (path, k, a[k]))
            elif k not in a:
                out.append("%s.%s: only on TARGET (%r)" % (path, k, b[k]))
            else:
                out += dict_diff(a[k], b[k], "%s.%s" % (path, k))
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b) and a and isinstance(a[0], dict):
        out = []
        for i, (x, y) in enumerate(zip(a, b)):
            out += dict_diff(x, y, "%s[%d]" % (path, i))
        return out
    return [] if a == b else ["%s: %r != %r" % (path, a, b)]


def rows_diff(src, tgt, limit=3):
    if src == tgt:
        return []
    missing = [k for k in src if k not in tgt]
    extra = [k for k in tgt if k not in src]
    changed = [k for k in src if k in tgt and src[k] != tgt[k]]
    out = ["rows: SOURCE %d, TARGET %d; missing on TARGET %d %s, extra %d %s, different %d"
           % (len(src), len(tgt), len(missing), missing[:limit], len(extra), extra[:limit], len(changed))]
    for k in changed[:limit]:
        out += ["row %r%s" % (k, d) for d in dict_diff(src[k], tgt[k])[:4]]
    return out


@dataclass
class Snapshot:
    """One side of one case, as read for the comparison."""
    meta: dict = None
    rows: dict = None
    count: int = None
    partition_rows: dict = None
    searches: dict = None


def snapshot(case, alias, db, name, source_rows=None, flush=False):
    """Reads one side. On TARGET the rows are read only once the collection is there and loaded
    (the task copies the load); `source_rows` picks the partition-key values to search for."""
    s = Snapshot(meta=describe(alias, db, name))
    if s.meta["load_state"] != "LoadStateLoaded":
        return s
    coll = Collection(name, using=alias)
    s.rows = read_rows(case, coll)
    s.count = count_star(case, coll)
    if case.partition_key is not None:
        s.searches = key_searches(case, coll, source_rows if source_rows is not None else s.rows)
        if flush:
            coll.flush(timeout=120)
        s.partition_rows = partition_rows(alias, db, name, s.meta["partitions"])
    return s


def expected_target_meta(case, src_meta):
    """SOURCE's metadata as TARGET should show it: the one intended difference is auto_id, which
    is off on TARGET so the primary keys stay the same."""
    exp = json.loads(json.dumps(src_meta))
    for f in exp["fields"]:
        f["auto_id"] = False
    return exp


def compare(case, src, tgt):
    """Differences between a case's SOURCE and TARGET snapshots (empty: equal)."""
    out = ["meta" + d for d in dict_diff(expected_target_meta(case, src.meta), tgt.meta)]
    if tgt.rows is None:
        return out + ["rows: not read, TARGET is %s" % tgt.meta["load_state"]]
    out += rows_diff(src.rows, tgt.rows)
    if src.count != tgt.count:
        out.append("count(*): SOURCE %s, TARGET %s" % (src.count, tgt.count))
    if case.partition_key is not None:
        out += ["search by partition key" + d for d in dict_diff(src.searches, tgt.searches)]
        out += ["rows per partition" + d for d in dict_diff(src.partition_rows, tgt.partition_rows)]
    return out


# ---------------------------------------------------------------------------------- SOURCE side

def create(case, alias, name):
    """Creates the collection with its partitions and indexes and starts loading it."""
    kw = {"shards_num": case.shards, "consistency_level": case.consistency}
    if case.num_partitions:
        kw["num_partitions"] = case.num_partitions
    if case.properties:
        kw["properties"] = case.properties
    coll = Collection(name, case.schema(), using=alias, **kw)
    for p in case.partitions:
        coll.create_partition(p)
    if case.altered:
        coll.set_properties(case.altered)
    for fld, params, index_name in case.indexes:
        coll.create_index(fld, params, index_name=index_name, timeout=120)
    coll.load(_async=True)
    return coll


def parallel(fn, items, workers=4):
    """fn(item) for every item on a few threads; re-raises the first failure."""
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(fn, items))

