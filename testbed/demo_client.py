#!/usr/bin/env python3
"""pymilvus side of scripts/demo.sh (run with the bed's venv interpreter).

  demo_client.py write URI NAME ROWS   (re)create NAME on URI, insert ROWS rows, flush
  demo_client.py watch URI NAME ROWS SECONDS
        poll URI until NAME holds ROWS rows or SECONDS pass; print what is seen.
        Exit 0 if all rows arrived, 3 if not.
"""
import sys
import time
import warnings

warnings.filterwarnings("ignore")  # pymilvus 2.3 import-time deprecation noise

from pymilvus import (Collection, CollectionSchema, DataType, FieldSchema,  # noqa: E402
                      connections, utility)

DIM = 8


def connect(uri):
    connections.connect("demo", uri=uri, timeout=30)
    return "demo"


def write(uri, name, rows):
    alias = connect(uri)
    if utility.has_collection(name, using=alias):
        utility.drop_collection(name, using=alias)
    schema = CollectionSchema([
        FieldSchema("pk", DataType.INT64, is_primary=True, auto_id=False),
        FieldSchema("vec", DataType.FLOAT_VECTOR, dim=DIM),
        FieldSchema("title", DataType.VARCHAR, max_length=64),
    ])
    coll = Collection(name, schema, using=alias, shards_num=1)
    pks = list(range(rows))
    coll.insert([pks, [[i / rows] * DIM for i in pks], ["demo row %d" % i for i in pks]])
    coll.flush()
    coll.create_index("vec", {"index_type": "FLAT", "metric_type": "L2", "params": {}})
    coll.load()
    got = coll.query("pk >= 0", output_fields=["count(*)"], consistency_level="Strong")
    print("SOURCE %s: collection %s holds %d rows" % (uri, name, got[0]["count(*)"]))


def watch(uri, name, rows, seconds):
    alias = connect(uri)
    deadline = time.monotonic() + seconds
    last = None
    interval = 1.0
    while True:
        seen = "collection %s absent (collections: %s)" % (name, utility.list_collections(using=alias))
        count = 0
        if utility.has_collection(name, using=alias):
            coll = Collection(name, using=alias)
            count = coll.num_entities  # flushed rows; works without an index or load
            seen = "collection %s present, %d rows flushed" % (name, count)
        if seen != last:
            print("TARGET %s: %s" % (uri, seen), flush=True)
            last = seen
        if count >= rows:
            return 0
        if time.monotonic() >= deadline:
            return 3
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
        interval = min(interval * 1.5, 5.0)


def main(argv):
    if len(argv) >= 4 and argv[0] == "write":
        write(argv[1], argv[2], int(argv[3]))
        return 0
    if len(argv) >= 5 and argv[0] == "watch":
        return watch(argv[1], argv[2], int(argv[3]), float(argv[4]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
