"""Audit Merkle log benchmark: append rate and proof cost at a million entries.

    python bench/audit_merkle.py [--leaves 1000000] [--samples 2000]

Appends ``--leaves`` canonical audit entries (serialise + leaf hash + frontier + in-memory
node store), then times, over ``--samples`` random requests each: an inclusion proof
(generate from stored nodes / verify), a consistency proof between two random sizes
(generate / verify), a historic root, and one signed checkpoint. Finally runs the whole-log
verification (recompute every hash, parse every entry, check the checkpoints). Reports
per-operation p50/p99 in microseconds and writes ``bench/results/audit-merkle.json``.
Single process, pure Python; the SQL store adds its own read latency on top of these.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from huitong.audit import (
    AccessBasis,
    Actor,
    AuditEntry,
    BasisKind,
    Checkpoint,
    MemoryNodeStore,
    MerkleLog,
    canonical_bytes,
    leaf_hash,
    sign_checkpoint,
    verify_consistency,
    verify_inclusion,
    verify_log,
)

RESULTS = Path(__file__).resolve().parents[1] / "bench" / "results"


def entry(i: int) -> bytes:
    return canonical_bytes(
        AuditEntry(
            recorded=1_700_000_000_000_000 + i,
            action="read",
            actor=Actor(role="clinician", user=f"user-{i % 977}", organization=f"org-{i % 31}"),
            basis=AccessBasis(BasisKind.ROLE, "clinician-own-organization"),
            resource_type="Observation",
            resources=(f"Observation/{i:012d}",),
            patients=(f"patient-{i % 100_003}",),
            request_id=f"req-{i}",
        )
    )


def timed(samples: int, fn: Callable[[int], object]) -> dict[str, float]:
    times = []
    for k in range(samples):
        t = time.perf_counter_ns()
        fn(k)
        times.append((time.perf_counter_ns() - t) / 1000)
    times.sort()
    return {
        "p50_us": round(statistics.median(times), 1),
        "p99_us": round(times[int(len(times) * 0.99) - 1], 1),
        "max_us": round(times[-1], 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--leaves", type=int, default=1_000_000)
    ap.add_argument("--samples", type=int, default=2000)
    args = ap.parse_args()
    n, rnd = args.leaves, random.Random(7)
    key = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))

    t = time.perf_counter()
    rows = [entry(i) for i in range(n)]
    serialise_s = time.perf_counter() - t

    store = MemoryNodeStore()
    log = MerkleLog(store)
    checkpoints = []
    t = time.perf_counter()
    for data in rows:
        log.append(data)
        if log.size % 100_000 == 0:  # a signed head every 100k entries
            checkpoints.append(sign_checkpoint(Checkpoint("bench", log.size, log.root(), 0), key))
    append_s = time.perf_counter() - t
    if log.size % 100_000:
        checkpoints.append(sign_checkpoint(Checkpoint("bench", log.size, log.root(), 0), key))
    root = log.root()

    idx = [rnd.randrange(n) for _ in range(args.samples)]
    pairs = [tuple(sorted(rnd.sample(range(1, n + 1), 2))) for _ in range(args.samples)]
    incl = [log.inclusion_proof(i) for i in idx]
    cons = [log.consistency_proof(a, b) for a, b in pairs]
    cons_roots = [(log.root(a), log.root(b)) for a, b in pairs]
    results = {
        "leaves": n,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "serialise_entries_per_s": round(n / serialise_s),
        "append_per_s": round(n / append_s),
        "root_current": timed(args.samples, lambda k: log.root()),
        "root_historic": timed(args.samples, lambda k: log.root(pairs[k][0])),
        "inclusion_generate": timed(args.samples, lambda k: log.inclusion_proof(idx[k])),
        "inclusion_verify": timed(
            args.samples,
            lambda k: verify_inclusion(leaf_hash(rows[idx[k]]), idx[k], n, incl[k], root),
        ),
        "consistency_generate": timed(args.samples, lambda k: log.consistency_proof(*pairs[k])),
        "consistency_verify": timed(
            args.samples,
            lambda k: verify_consistency(*pairs[k], *cons_roots[k], cons[k]),
        ),
        "checkpoint_sign": timed(
            200, lambda k: sign_checkpoint(Checkpoint("bench", n, root, k), key)
        ),
    }
    for i, proof in zip(idx, incl, strict=True):
        assert verify_inclusion(leaf_hash(rows[i]), i, n, proof, root)
    t = time.perf_counter()
    report = verify_log(enumerate(rows), checkpoints, key.public_key(), store=store)
    results["verify_log_s"] = round(time.perf_counter() - t, 2)
    assert report.ok, report.text()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "audit-merkle.json").write_text(json.dumps(results, indent=2) + "\n")
    json.dump(results, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
