"""What the audit log costs on ingest (issue 5: ≤ 15% of throughput).

    python3 bench/audit_ingest.py [--engine postgresql|sqlite] [--limit 40] [--rounds 2]

Loads the same subset of the Synthea bundles (``bench/ingest.py``'s reader and HTTP poster,
hospitals and practitioners first) into a fresh database through ``huitong serve`` with
``HUITONG_AUDIT=off`` and ``=on``, alternating, ``--rounds`` times each in one run so the
machine's load affects both alike; prints resources/s per mode (best round) and the cost.
With audit on every transaction Bundle commits with its audit entry (the resources and
patients it wrote) and the server's sequencer builds the Merkle tree beside the load.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import ServerProcess, fresh_database

from ingest import count_resources, post_all, read_bundles


def run(engine: str, bundles: list[bytes], audit: str, clients: int) -> float:
    url = fresh_database(engine)
    with ServerProcess(url, extra_env={"HUITONG_AUDIT": audit}) as server:
        elapsed, errors = post_all(server.base, bundles, clients)
    if errors:
        sys.exit(f"errors with audit={audit}: {errors[:2]}")
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", default="postgresql", choices=["postgresql", "sqlite"])
    ap.add_argument("--limit", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--clients", type=int, default=2)
    args = ap.parse_args()
    bundles = read_bundles(args.limit)
    n = count_resources(bundles)
    best: dict[str, float] = {}
    for r in range(args.rounds):
        for mode in ("off", "on") if r % 2 == 0 else ("on", "off"):
            elapsed = run(args.engine, bundles, mode, args.clients)
            rate = n / elapsed
            best[mode] = max(best.get(mode, 0.0), rate)
            print(f"round {r + 1} audit={mode}: {rate:,.0f} resources/s ({elapsed:.1f} s)")
    cost = 1 - best["on"] / best["off"]
    result = {
        "engine": args.engine, "bundles": len(bundles), "resources": n,
        "audit_off_resources_per_s": round(best["off"]),
        "audit_on_resources_per_s": round(best["on"]), "audit_cost": round(cost, 3),
        "machine": f"{platform.node()} {platform.machine()}", "date": time.strftime("%Y-%m-%d"),
    }  # fmt: skip
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
