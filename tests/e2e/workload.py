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


def all_rows(coll, pk_type="int64", fields=("pk", "vec", "title", "meta", "extra")):
    """Every row by primary key (Strong consistency); needs a loaded collection."""
    expr = "pk >= 0" if pk_type == "int64" else 'pk != ""'
    out = {}
    res = coll.query(expr, output_fields=list(fields), consistency_level="Strong", timeout=120, limit=16384)
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
