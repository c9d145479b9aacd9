"""CPU, round trips and commits per HL7 v2 message, without a profiler.

    python bench/mllp_cpu.py [--messages 300] [--round 50] [--batch N] [--keep]

The in-process intake of ``mllp_profile.py`` (real app, identity and quality services on,
PostgreSQL), but measured the way a shared, loaded machine does not distort: this thread's
CPU (``time.thread_time``) per message, the times the process blocked (one per database
round trip) per message, and the database's committed transactions per message
(``pg_stat_database.xact_commit`` of the bench's own database, read after the statistics
are flushed). ``HUITONG_SRC`` runs another tree's code (the session-start tree:
``HUITONG_SRC=/tmp/base/src``) with this script, so both are measured the same way.

``valgrind --tool=callgrind --instr-atstart=no python bench/mllp_cpu.py --callgrind``
counts the instructions of the measured messages alone (Ir / messages).

The database is ``h8_b_<random>`` on ``HUITONG_BENCH_POSTGRES_URL`` and is dropped at the
end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, os.environ.get("HUITONG_SRC", str(ROOT / "src")))
sys.path.insert(1, str(ROOT / "bench"))

import psycopg  # noqa: E402
from mllp_mix import warm_intake  # noqa: E402

import huitong  # noqa: E402

ADMIN_URL = os.environ.get("HUITONG_BENCH_POSTGRES_URL",
                           "postgresql://postgres@127.0.0.1:5432/postgres")


def _commits(name: str) -> int:
    """Committed transactions of database ``name`` so far (other sessions' counters reach
    the statistics when they go idle; the caller waits for that)."""
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        row = conn.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = %s",
                           (name,)).fetchone()
    return int(row[0]) if row else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--batch", type=int, default=0)
    parser.add_argument("--round", type=int, default=50)
    parser.add_argument("--keep", action="store_true")
    # Under ``valgrind --tool=callgrind --instr-atstart=no``: instrument the measured loop
    # only, so the instructions it executed (Ir) are the one figure a loaded machine does
    # not change.
    parser.add_argument("--callgrind", action="store_true")
    args = parser.parse_args()
    name = f"h8_b_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        ingest, batch = warm_intake(url, args.messages)
        gc.collect()
        # PostgreSQL publishes a session's counters at most once a second and otherwise
        # when it has been idle for 10 s: wait for both ends of the measured interval.
        time.sleep(11)
        commits = _commits(name)
        if args.callgrind:  # count instructions of the measured loop only
            subprocess.run(["callgrind_control", "-i", "on", str(os.getpid())], check=True,
                           capture_output=True)
        waits = resource.getrusage(resource.RUSAGE_SELF).ru_nvcsw
        codes: dict[str, int] = {}
        # Rounds of ``--round`` messages: other processes on the machine only ever add to a
        # round's CPU (caches, frequency), so the lowest round is the least disturbed.
        rounds: list[float] = []
        step = args.batch or 1
        for start in range(0, len(batch), args.round):
            cpu = time.thread_time()
            chunk = batch[start:start + args.round]
            for i in range(0, len(chunk), step):
                results = (ingest.receive_hl7v2_batch(chunk[i:i + step]) if args.batch
                           else [ingest.receive_hl7v2(chunk[i])])
                for result in results:
                    codes[result.ack_code] = codes.get(result.ack_code, 0) + 1
            rounds.append((time.thread_time() - cpu) / len(chunk))
        waits = resource.getrusage(resource.RUSAGE_SELF).ru_nvcsw - waits
        if args.callgrind:
            subprocess.run(["callgrind_control", "-i", "off", str(os.getpid())], check=True,
                           capture_output=True)
        time.sleep(11)
        commits = _commits(name) - commits
        n = len(batch)
        ordered, mean = sorted(rounds), sum(rounds) / len(rounds)
        print(f"{Path(huitong.__file__).parents[1]}: {n} messages acks={codes} "
              f"CPU ms/message: min round {ordered[0] * 1000:.2f}, median round "
              f"{ordered[len(ordered) // 2] * 1000:.2f}, all {mean * 1000:.2f};"
              f" {waits / n:.1f} round trips/message, {commits / n:.2f} commits/message")
        ingest.repo.close()
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            if not args.keep:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
