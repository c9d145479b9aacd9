"""MLLP end to end: the real server process, PostgreSQL, identity and quality services on.

    python bench/mllp_e2e.py [--engine postgresql] [--connections 4] [--messages 2000]
                             [--batch 32] [--workers 1] [--output PATH]

Starts ``huitong serve --mllp-port`` on a fresh database (``HUITONG_MLLP_BATCH=--batch``,
``HUITONG_WORKERS=--workers``: every worker listens on the MLLP port, the kernel spreads the
connections),
creates one channel, and sends the ADT/ORU mix of ``mllp_mix`` (fresh control ids and
patient ids, so nothing is a resend) over ``--connections`` concurrent connections, each
sender waiting for its ACK before the next message. Every message is received, stored raw,
mapped, written through the FHIR transaction executor and acknowledged. In the same run the
bare MLLP echo (``mllp_echo.py``: receive and ACK only) is measured for comparison.
Prints messages/s and ACK p50/p95/p99 for both, and the ACK codes seen.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from _server import ServerProcess, _free_port, fresh_database  # noqa: E402
from mllp_echo import load_messages, run_mode  # noqa: E402
from mllp_mix import CHANNEL, load_templates, messages  # noqa: E402

from huitong.ingest.mllp import MllpClient  # noqa: E402


def _code(ack: bytes) -> str:
    for segment in ack.split(b"\r"):
        if segment.startswith(b"MSA|"):
            return segment[4:6].decode()
    return "??"


async def drive(port: int, stream: list[bytes], connections: int) -> dict[str, Any]:
    latencies: list[float] = []
    codes: dict[str, int] = {}
    share = len(stream) // connections

    async def sender(n: int) -> None:
        async with await MllpClient.connect("127.0.0.1", port) as client:
            for payload in stream[n * share:(n + 1) * share]:
                start = time.perf_counter()
                ack = await client.send(payload)
                latencies.append(time.perf_counter() - start)
                code = _code(ack)
                codes[code] = codes.get(code, 0) + 1

    start = time.perf_counter()
    await asyncio.gather(*(sender(n) for n in range(connections)))
    elapsed = time.perf_counter() - start
    cuts = statistics.quantiles(latencies, n=100)
    return {
        "messages": len(latencies), "seconds": round(elapsed, 2),
        "messages_per_second": round(len(latencies) / elapsed, 1),
        "ack_p50_ms": round(cuts[49] * 1000, 1), "ack_p95_ms": round(cuts[94] * 1000, 1),
        "ack_p99_ms": round(cuts[98] * 1000, 1), "codes": codes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", default="postgresql")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--workers", type=int, default=1,
                        help="server processes (HUITONG_WORKERS); each listens on the MLLP port")
    parser.add_argument("--echo-messages", type=int, default=4000)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    results: dict[str, Any] = {
        "machine": f"{platform.machine()} {os.cpu_count()} cores",
        "python": platform.python_version(), "engine": args.engine,
        "connections": args.connections, "batch": args.batch, "workers": args.workers,
        "load_average_before": os.getloadavg(),
    }
    results["echo"] = run_mode("echo", load_messages(), args.connections, args.echo_messages)
    print(f"echo: {results['echo']}", flush=True)
    templates = load_templates()
    run = uuid.uuid4().hex[:6]
    stream = messages(run, templates)
    warm = [next(stream) for _ in range(40)]
    measured = [next(stream) for _ in range(args.messages)]
    mllp_port = _free_port()
    env = {"HUITONG_MLLP_PORT": str(mllp_port), "HUITONG_MLLP_BATCH": str(args.batch),
           "HUITONG_WORKERS": str(args.workers)}
    with ServerProcess(fresh_database(args.engine), extra_env=env) as server:
        api = server.base.rsplit("/fhir", 1)[0]
        httpx.put(f"{api}/api/ingest/channels/{CHANNEL['id']}", json=CHANNEL,
                  timeout=30).raise_for_status()
        time.sleep(1.5)  # the listener learns channels from its background refresh
        asyncio.run(drive(mllp_port, warm, args.connections))
        results["e2e"] = asyncio.run(drive(mllp_port, measured, args.connections))
        results["server_peak_rss_mb"] = round(server.peak_rss_mb(), 1)
        results["server_peak_process_rss_mb"] = round(server.peak_process_rss_mb(), 1)
        results["server_peak_pss_mb"] = round(server.peak_pss_mb(), 1)
    results["load_average_after"] = os.getloadavg()
    print(f" e2e: {results['e2e']}", flush=True)
    print(json.dumps(results, indent=2))
    if args.output:
        args.output.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
