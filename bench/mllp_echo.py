"""Bare MLLP benchmark: receive and acknowledge only (no storage, no mapping).

    python bench/mllp_echo.py [--connections 4] [--messages 5000] [--mode both|echo|ack]
                              [--output PATH]

Starts the Huitong MLLP listener in a separate process (so the load generator does not
share its event loop or CPU time slice), then sends an ADT/ORU mix from
``../shared/data/hl7v2-samples`` over ``--connections`` concurrent connections, each
sender waiting for every ACK before sending its next message (as MLLP senders do). Modes:

* ``echo``: the handler returns one prebuilt ACK — framing, sockets and the event loop;
* ``ack``: the handler parses the message (decode, header checks, python-hl7 tree) and
  builds its ACK — the floor under the full pipeline benchmark.

Prints (and with ``--output`` writes) messages/s and ACK round-trip p50/p99 per mode.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from huitong.clock import new_uuid  # noqa: E402
from huitong.ingest.hl7v2 import Hl7v2Error, Outcome, build_ack, parse  # noqa: E402
from huitong.ingest.mllp import MllpClient, Peer, start_mllp_server  # noqa: E402

SAMPLES = ROOT.parent / "shared" / "data" / "hl7v2-samples"
FIXED_ACK = b"MSH|^~\\&|HUITONG|HIE|SENDER|FAC|20240101000000||ACK^A01^ACK|1|P|2.5.1\rMSA|AA|1\r"


def load_messages() -> list[bytes]:
    files = sorted([*SAMPLES.glob("ADT-*.hl7"), *SAMPLES.glob("ORU-*.hl7"),
                    *SAMPLES.glob("LAB-ORU-*.hl7")])
    if not files:
        sys.exit(f"HL7 v2 samples not found at {SAMPLES}")
    return [f.read_bytes() for f in files]


async def echo_handler(payload: bytes, peer: Peer) -> bytes:
    return FIXED_ACK


async def ack_handler(payload: bytes, peer: Peer) -> bytes:
    # Always the application ACK, even for senders whose MSH-15/16 ask for none (a few
    # samples say NE/NE), so every message costs the same round trip.
    try:
        parsed = parse(payload)
    except Hl7v2Error as error:
        header, outcome, codec = error.header, Outcome.failed(error.issues, stored=False), (
            error.codec)
    else:
        header, outcome, codec = parsed.header, Outcome.processed(parsed.warnings), parsed.codec
    ack = build_ack(header, outcome.application_code, outcome.issues,
                    clock=lambda: time.time_ns() // 1000, new_id=new_uuid, codec=codec)
    return ack.encode()


def serve(mode: str, port_queue: Any) -> None:
    async def main() -> None:
        handler = echo_handler if mode == "echo" else ack_handler
        server = await start_mllp_server(handler, idle_timeout=None)
        port_queue.put(server.port)
        await asyncio.Event().wait()  # until the parent terminates this process

    asyncio.run(main())


async def drive(port: int, messages: list[bytes], connections: int, total: int
                ) -> dict[str, float]:
    latencies: list[float] = []
    per_connection = total // connections

    async def sender(n: int) -> None:
        async with await MllpClient.connect("127.0.0.1", port) as client:
            for i in range(per_connection):
                payload = messages[(n * per_connection + i) % len(messages)]
                start = time.perf_counter()
                ack = await client.send(payload)
                latencies.append(time.perf_counter() - start)
                if b"MSA|AA" not in ack and b"MSA|CA" not in ack:
                    raise RuntimeError("unexpected ACK code")

    # Warm up one connection so start-up costs are not counted.
    async with await MllpClient.connect("127.0.0.1", port) as client:
        for payload in messages[:20]:
            await client.send(payload)
    start = time.perf_counter()
    await asyncio.gather(*(sender(n) for n in range(connections)))
    elapsed = time.perf_counter() - start
    cuts = statistics.quantiles(latencies, n=100)
    return {
        "messages": len(latencies),
        "seconds": round(elapsed, 3),
        "messages_per_second": round(len(latencies) / elapsed, 1),
        "ack_p50_ms": round(cuts[49] * 1000, 3),
        "ack_p99_ms": round(cuts[98] * 1000, 3),
    }


def run_mode(mode: str, messages: list[bytes], connections: int, total: int) -> dict[str, float]:
    ctx = multiprocessing.get_context("spawn")
    ports = ctx.Queue()
    process = ctx.Process(target=serve, args=(mode, ports), daemon=True)
    process.start()
    try:
        port = ports.get(timeout=30)
        return asyncio.run(drive(port, messages, connections, total))
    finally:
        process.terminate()
        process.join(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--mode", choices=["both", "echo", "ack"], default="both")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    messages = load_messages()
    modes = ["echo", "ack"] if args.mode == "both" else [args.mode]
    results: dict[str, Any] = {
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "python": platform.python_version(),
        "connections": args.connections,
        "sample_messages": len(messages),
    }
    for mode in modes:
        results[mode] = run_mode(mode, messages, args.connections, args.messages)
        print(f"{mode:>4}: {results[mode]}", flush=True)
    if args.output:
        args.output.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
