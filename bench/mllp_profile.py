"""Where the time of one HL7 v2 message goes: the in-process intake under cProfile.

    python bench/mllp_profile.py [--engine postgresql|sqlite] [--messages 300] [--batch N]

Builds the real app (identity and quality services on, as in production) on a fresh
database, sends the ADT/ORU mix of ``mllp_mix`` through ``IngestService`` (one by one, or in
groups of ``--batch`` through the batched path) and prints msg/s and the top of the profile.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from _server import fresh_database  # noqa: E402
from mllp_mix import warm_intake  # noqa: E402


def _blocking_waits() -> int:
    """Times this process blocked so far (voluntary context switches): in the measured loop,
    nearly all are waits for an answer from the database, one per round trip."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_nvcsw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", default="postgresql")
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--batch", type=int, default=0)
    parser.add_argument("--top", type=int, default=35)
    args = parser.parse_args()
    url = fresh_database(args.engine)
    ingest, batch = warm_intake(url, args.messages)
    profiler = cProfile.Profile()
    reads = _blocking_waits()
    start, cpu = time.perf_counter(), time.process_time()
    profiler.enable()
    codes: dict[str, int] = {}
    if args.batch:
        for i in range(0, len(batch), args.batch):
            for result in ingest.receive_hl7v2_batch(batch[i:i + args.batch]):
                codes[result.ack_code] = codes.get(result.ack_code, 0) + 1
    else:
        for raw in batch:
            result = ingest.receive_hl7v2(raw)
            codes[result.ack_code] = codes.get(result.ack_code, 0) + 1
    profiler.disable()
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(f"{len(batch)} messages in {elapsed:.2f}s: {len(batch) / elapsed:.1f} msg/s "
          f"({elapsed / len(batch) * 1000:.2f} ms/message) acks={codes}")
    stats = pstats.Stats(profiler)
    # What a loaded machine does not distort: this process's CPU per message (under the
    # profiler, so higher than without it) and database round trips per message: times the
    # process blocked (a pipeline of statements is one wait however many it carries, where
    # counting psycopg's waits would count each statement).
    print(f"CPU {cpu / len(batch) * 1000:.1f} ms/message (profiled); "
          f"{(_blocking_waits() - reads) / len(batch):.1f} database round trips/message")
    stats.sort_stats("cumulative").print_stats(args.top)
    stats.sort_stats("tottime").print_stats(20)


if __name__ == "__main__":
    main()
