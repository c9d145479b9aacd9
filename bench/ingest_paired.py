"""What translation and data quality cost a real server's ingest throughput, measured in pairs.

    python bench/ingest_paired.py [--limit 300] [--chunk 10] [--clients 4] [--workers 2]
                                  [--rounds 1]

Starts two ``huitong serve`` processes on two fresh PostgreSQL databases: one as shipped
("on": identity, translation and quality), one with ``HUITONG_TRANSLATE=off`` and
``HUITONG_QUALITY=off`` ("off": the rest of the pipeline the same). The Synthea bundles
(hospitals and practitioners first) are posted in chunks of ``--chunk`` bundles with
``--clients`` concurrent connections: each chunk to one server, then to the other, the order
swapped at every chunk. The server not being loaded is idle, so each chunk's "on" runs
seconds from its "off" on the same machine: a change of the shared machine's speed, which
moves a whole run by up to 20 % here, falls on both alike (one run of each mode after the
other, as ``bench/ingest.py --no-quality`` against ``bench/ingest.py``, cannot tell that from
the cost it measures).

Reported: resources/s of each mode over the whole load, the cost (``1 - off wall / on
wall``), the median of the chunks' wall ratios, a 95 % interval of the cost by resampling
the chunks (bootstrap, fixed seed), and the CPU each server and its PostgreSQL backends
spent per resource. Results go to ``bench/results/ingest_paired.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import time
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import psycopg
from _server import ADMIN_URL, ServerProcess, cpu_snapshot, cpu_spent, fresh_database

from ingest import ARCHIVE, count_resources, post_all, read_bundles

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
MODES = {"off": {"HUITONG_TRANSLATE": "off", "HUITONG_QUALITY": "off"}, "on": {}}


def bootstrap_cost(pairs: list[tuple[float, float]], *, samples: int = 2000) -> list[float]:
    """The 2.5th and 97.5th percentiles of the cost over chunks drawn again with replacement
    (each pair: off wall, on wall): how far the figure could move with other chunks."""
    rng = random.Random(20261123)
    costs = []
    for _ in range(samples):
        drawn = [pairs[rng.randrange(len(pairs))] for _ in pairs]
        off, on = sum(p[0] for p in drawn), sum(p[1] for p in drawn)
        costs.append(100 * (1 - off / on))
    costs.sort()
    return [round(costs[int(0.025 * samples)], 1), round(costs[int(0.975 * samples)], 1)]


def one_round(bundles: list[bytes], chunk: int, clients: int, workers: int) -> dict[str, object]:
    chunks = [bundles[i:i + chunk] for i in range(0, len(bundles), chunk)]
    urls = {mode: fresh_database("postgresql") for mode in MODES}
    walls: dict[str, list[float]] = {mode: [] for mode in MODES}
    cpu = {mode: {"server": 0.0, "db": 0.0} for mode in MODES}
    errors: list[str] = []
    try:
        # Both servers stop (and the second one's start failing stops the first) whatever
        # happens, before their databases are dropped.
        with ExitStack() as stack:
            servers = {
                mode: stack.enter_context(ServerProcess(
                    urls[mode], extra_env={"HUITONG_WORKERS": str(workers), **env}))
                for mode, env in MODES.items()
            }  # fmt: skip
            for i, part in enumerate(chunks):
                for mode in ("off", "on") if i % 2 == 0 else ("on", "off"):
                    server = servers[mode]
                    before = cpu_snapshot(server.proc.pid, urls[mode])
                    wall, failed = post_all(server.base, part, clients)
                    spent = cpu_spent(before, cpu_snapshot(server.proc.pid, urls[mode]))
                    walls[mode].append(wall)
                    cpu[mode]["server"] += spent["server"]
                    cpu[mode]["db"] += spent["db"]
                    errors += [f"{mode}: {e}" for e in failed]
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            for url in urls.values():
                conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
    n = count_resources(bundles)
    pairs = list(zip(walls["off"], walls["on"], strict=True))
    ratios = sorted(on / off for off, on in pairs)
    off_wall, on_wall = sum(walls["off"]), sum(walls["on"])
    return {
        "resources": n,
        "chunks": len(chunks),
        "errors": len(errors),
        "first_errors": errors[:3],
        "off_per_s": round(n / off_wall, 1),
        "on_per_s": round(n / on_wall, 1),
        "throughput_cost_pct": round(100 * (1 - off_wall / on_wall), 1),
        "cost_95_interval_pct": bootstrap_cost(pairs),
        "median_chunk_wall_ratio": round(ratios[len(ratios) // 2], 3),
        "server_cpu_us_per_resource": {
            m: round(cpu[m]["server"] * 1e6 / n) for m in MODES},
        "db_cpu_us_per_resource": {m: round(cpu[m]["db"] * 1e6 / n) for m in MODES},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--limit", type=int, default=300, help="bundles to load")
    ap.add_argument("--chunk", type=int, default=10, help="bundles per paired chunk")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2, help="server processes (HUITONG_WORKERS)")
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args()
    if not ARCHIVE.exists():
        sys.exit(f"shared Synthea data not found at {ARCHIVE}")
    bundles = read_bundles(args.limit)
    rounds = []
    for r in range(args.rounds):
        rounds.append(one_round(bundles, args.chunk, args.clients, args.workers))
        print(f"round {r + 1}: {rounds[-1]}", flush=True)
    result = {
        "rounds": rounds,
        "mean_throughput_cost_pct": round(
            sum(float(r["throughput_cost_pct"]) for r in rounds) / len(rounds), 1),  # type: ignore[arg-type]
        "bundles": len(bundles),
        "chunk": args.chunk,
        "clients": args.clients,
        "workers": args.workers,
        "machine": f"{platform.node()} {platform.machine()} {platform.processor()}".strip(),
        "date": time.strftime("%Y-%m-%d"),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "ingest_paired.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    if any(r["errors"] for r in rounds):
        sys.exit(1)


if __name__ == "__main__":
    main()
