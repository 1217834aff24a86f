"""Load generation for the replication benchmark: the bench schema, pre-serialized insert
batches sent over raw gRPC, and a writer that runs flat out or at a fixed rate.

Why raw gRPC: pymilvus turns every row into protobuf in Python, which on a 2-core machine
costs more CPU than the servers spend on the rows. The batches here are serialized once
(vector, varchar and JSON columns) and only the primary-key column is made per call, so the
writer measures the servers, not the client. The same bytes go to SOURCE and to TARGET's
direct-insert collection, so both phases write identical data.
"""
import json
import random
import threading
import time

import grpc
from pymilvus import CollectionSchema, DataType, FieldSchema
from pymilvus.grpc_gen import milvus_pb2, schema_pb2

INSERT_METHOD = "/milvus.proto.milvus.MilvusService/Insert"


def bench_schema(dim):
    return CollectionSchema([
        FieldSchema("pk", DataType.INT64, is_primary=True, auto_id=False),
        FieldSchema("vec", DataType.FLOAT_VECTOR, dim=dim),
        FieldSchema("title", DataType.VARCHAR, max_length=256),
        FieldSchema("meta", DataType.JSON),
    ], description="milvus-cdc benchmark")


def column_bytes(batch, dim, seed):
    """The vec, title and meta columns of one batch, serialized as a partial InsertRequest."""
    rnd = random.Random(seed)
    vec = [rnd.random() for _ in range(batch * dim)]
    titles = [f"bench title {seed}-{i:06d} {'x' * (i % 17)}" for i in range(batch)]
    metas = [json.dumps({"n": i, "seed": seed, "tag": "bench", "score": round(rnd.random(), 4)}).encode()
             for i in range(batch)]
    req = milvus_pb2.InsertRequest(num_rows=batch, fields_data=[
        schema_pb2.FieldData(type=DataType.FLOAT_VECTOR, field_name="vec", vectors=schema_pb2.VectorField(
            dim=dim, float_vector=schema_pb2.FloatArray(data=vec))),
        schema_pb2.FieldData(type=DataType.VARCHAR, field_name="title", scalars=schema_pb2.ScalarField(
            string_data=schema_pb2.StringArray(data=titles))),
        schema_pb2.FieldData(type=DataType.JSON, field_name="meta", scalars=schema_pb2.ScalarField(
            json_data=schema_pb2.JSONArray(data=metas))),
    ])
    return req.SerializeToString()


class Batches:
    """Insert requests of `batch` rows with primary keys start, start+1, ...: a head (names and
    the pk column) made per call, followed by one of a few pre-serialized column blocks.
    Protobuf concatenation appends repeated fields, so fields_data ends up pk, vec, title, meta."""

    def __init__(self, batch, dim, variants=4):
        self.batch = batch
        self.dim = dim
        self.columns = [column_bytes(batch, dim, seed) for seed in range(variants)]
        self.row_bytes = len(self.columns[0]) / batch + 8

    def request(self, collection, first_pk, n):
        head = milvus_pb2.InsertRequest(db_name="default", collection_name=collection, fields_data=[
            schema_pb2.FieldData(type=DataType.INT64, field_name="pk", scalars=schema_pb2.ScalarField(
                long_data=schema_pb2.LongArray(data=range(first_pk, first_pk + self.batch))))])
        return head.SerializeToString() + self.columns[n % len(self.columns)]


class RawInserter:
    """One gRPC channel to a Milvus proxy; Insert of pre-serialized requests."""

    def __init__(self, uri):
        address = uri.split("://", 1)[-1]
        self.channel = grpc.insecure_channel(address, options=[
            ("grpc.max_send_message_length", 256 << 20), ("grpc.max_receive_message_length", 256 << 20)])
        self._insert = self.channel.unary_unary(INSERT_METHOD, request_serializer=None,
                                                response_deserializer=milvus_pb2.MutationResult.FromString)

    def insert(self, request_bytes, timeout=60):
        resp = self._insert(request_bytes, timeout=timeout)
        if resp.status.error_code != 0 or resp.status.code != 0:
            raise RuntimeError(f"Insert failed: {resp.status.code} {resp.status.reason}")
        return resp.insert_cnt

    def close(self):
        self.channel.close()


class Writer:
    """Writes batches into one collection for `duration` seconds, flat out (rate 0) or at
    `rate` rows/s, from one thread, each call waiting for the previous one's answer (like
    milvus-cdc's own applier). Counts acknowledged rows; every `marker_every` seconds the first
    row of a batch becomes a marker: (pk, monotonic time its batch was acknowledged)."""

    def __init__(self, inserter, batches, collection, first_pk, rate=0.0, marker_every=0.0, on_marker=None):
        self.inserter = inserter
        self.batches = batches
        self.collection = collection
        self.next_pk = first_pk
        self.rate = rate
        self.marker_every = marker_every
        self.on_marker = on_marker
        self.acked_rows = 0          # read by the sampler thread
        self.calls = 0
        self.behind_s = 0.0          # fixed rate: the largest delay behind schedule
        self.error = None
        self._stop = threading.Event()
        self._thread = None

    def start(self, duration):
        self._thread = threading.Thread(target=self._run, args=(duration,), daemon=True, name="writer")
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()

    def join(self):
        self._thread.join()
        if self.error:
            raise self.error

    def _run(self, duration):
        try:
            t0 = time.monotonic()
            end = t0 + duration
            next_marker = t0
            interval = self.batches.batch / self.rate if self.rate > 0 else 0.0
            n = 0
            while not self._stop.is_set():
                now = time.monotonic()
                if now >= end:
                    break
                if interval:
                    due = t0 + n * interval
                    if due > now:
                        time.sleep(min(due - now, end - now))
                        continue
                    self.behind_s = max(self.behind_s, now - due)
                first = self.next_pk
                # A list of collections takes the batches in turn.
                coll = self.collection[n % len(self.collection)] if isinstance(self.collection, list) else self.collection
                req = self.batches.request(coll, first, n)
                self.inserter.insert(req)
                acked = time.monotonic()
                self.next_pk += self.batches.batch
                self.acked_rows += self.batches.batch
                self.calls += 1
                n += 1
                if self.on_marker and self.marker_every and acked >= next_marker:
                    self.on_marker(first, acked)
                    next_marker = acked + self.marker_every
        except Exception as e:  # reported by join()
            self.error = e
