"""A closed-loop gRPC load generator for ``make bench`` (wrk speaks only HTTP/1.1).

``connections`` callers on one channel each send ModelInfer, wait for the answer, and send the
next, cycling through pre-serialised requests for ``duration`` seconds; prints
``{"rps": ..., "p50_ms": ..., "p99_ms": ..., "errors": ...}``. Run it pinned to its own core
(``taskset``), as wrk is: messages are sent as bytes, so the client's own cost is small.

    python bench/grpc_load.py TARGET REQUESTS_FILE CONNECTIONS DURATION
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import grpc
from grpc import aio

METHOD = "/inference.GRPCInferenceService/ModelInfer"


def read_requests(path: Path) -> list[bytes]:
    """Length-prefixed (4 bytes, little-endian) serialised ModelInferRequest messages."""
    data, out, offset = path.read_bytes(), [], 0
    while offset < len(data):
        n = int.from_bytes(data[offset : offset + 4], "little")
        out.append(data[offset + 4 : offset + 4 + n])
        offset += 4 + n
    return out


def write_requests(path: Path, messages: list[bytes]) -> Path:
    path.write_bytes(b"".join(len(m).to_bytes(4, "little") + m for m in messages))
    return path


async def run(target: str, messages: list[bytes], connections: int, duration: float) -> dict:
    latencies: list[float] = []
    errors = 0
    async with aio.insecure_channel(target) as channel:
        call = channel.unary_unary(METHOD)  # bytes in, bytes out: no client-side protobuf
        await call(messages[0])
        end = time.perf_counter() + duration

        async def caller(offset: int) -> None:
            nonlocal errors
            i = offset
            while (t := time.perf_counter()) < end:
                try:
                    await call(messages[i % len(messages)])
                except grpc.RpcError:
                    errors += 1
                latencies.append(time.perf_counter() - t)
                i += 1

        start = time.perf_counter()
        await asyncio.gather(*(caller(c) for c in range(connections)))
        elapsed = time.perf_counter() - start
    latencies.sort()
    return {
        "rps": len(latencies) / elapsed,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
        "errors": errors,
    }


def main() -> int:
    target, path, connections, duration = sys.argv[1:5]
    result = asyncio.run(run(target, read_requests(Path(path)), int(connections), float(duration)))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
