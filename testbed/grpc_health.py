"""Health check of a Milvus gRPC server (the bed's milvus-lite): calls
MilvusService/CheckHealth and exits 0 only when it answers isHealthy=true.

Usage: python grpc_health.py HOST:PORT [TIMEOUT_S]

Only grpcio is needed: the request is empty and the answer's one field we read
(CheckHealthResponse.isHealthy, field 2, a bool) is decoded by hand, so the check does
not import pymilvus (a second or more per call on a busy machine).
"""
import sys

import grpc

METHOD = "/milvus.proto.milvus.MilvusService/CheckHealth"


def varint(buf, i):
    shift = value = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, i
        shift += 7


def is_healthy(answer):
    """isHealthy (field 2, varint) of a serialized CheckHealthResponse; absent means false."""
    i, healthy = 0, False
    while i < len(answer):
        key, i = varint(answer, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, i = varint(answer, i)
            if field == 2:
                healthy = value != 0
        elif wire == 2:
            n, i = varint(answer, i)
            i += n
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        else:
            return False
    return healthy


def main():
    address = sys.argv[1]
    timeout = float(sys.argv[2]) if len(sys.argv) > 2 else 3.0
    with grpc.insecure_channel(address) as channel:
        call = channel.unary_unary(METHOD, request_serializer=None, response_deserializer=None)
        try:
            answer = call(b"", timeout=timeout)
        except grpc.RpcError as e:
            print(f"{address}: {e.code().name}", file=sys.stderr)
            return 1
    if not is_healthy(answer):
        print(f"{address}: CheckHealth answered isHealthy=false", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
