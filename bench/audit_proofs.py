"""Inclusion and consistency proofs from the SQL node table with 10,000,000 entries (issue 5:
≤ 5 ms each), on PostgreSQL.

The node table of an N-leaf tree is built directly in the database (RFC 9162 hashing with
PostgreSQL's ``sha256``, level by level), in a scratch database kept between runs so the
build is paid once. Then random proofs are served through ``AuditService`` exactly as the API
serves them (tree size check + one batched primary-key read) and verified against the root.

    python3 bench/audit_proofs.py [--entries 10000000] [--proofs 300] [--admin-url URL]
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import time

import psycopg

from huitong.audit import leaf_hash, verify_consistency, verify_inclusion
from huitong.audit.service import AuditService
from huitong.store import open_repository


def build(url: str, n: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT MAX(idx) FROM audit_nodes WHERE level = 0").fetchone()
        have = row[0] if row else None
        if have is not None and int(have) + 1 == n:
            print(f"node table already holds {n:,} leaves")
            return
        t0 = time.perf_counter()
        conn.execute("TRUNCATE audit_nodes, audit_entries")
        # Leaf i is the hash of the entry bytes 'entry-<i>' (RFC 9162: 0x00 || entry).
        conn.execute(
            "INSERT INTO audit_nodes (level, idx, hash) SELECT 0, i, "
            "sha256('\\x00'::bytea || convert_to('entry-' || i, 'UTF8')) "
            "FROM generate_series(0, %s - 1) AS i", (n,))  # fmt: skip
        level, count = 0, n
        while count > 1:
            conn.execute(
                "INSERT INTO audit_nodes (level, idx, hash) "
                "SELECT %s + 1, a.idx / 2, sha256('\\x01'::bytea || a.hash || b.hash) "
                "FROM audit_nodes a JOIN audit_nodes b ON b.level = a.level AND b.idx = a.idx + 1 "
                "WHERE a.level = %s AND a.idx %% 2 = 0", (level, level))  # fmt: skip
            level, count = level + 1, count // 2
        conn.execute("VACUUM ANALYZE audit_nodes")
        print(f"built {n:,} leaves in {time.perf_counter() - t0:.0f} s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=10_000_000)
    ap.add_argument("--proofs", type=int, default=300)
    ap.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = ap.parse_args()
    name = f"huitong_bench_audit_{args.entries}"
    with psycopg.connect(args.admin_url, autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            admin.execute(f'CREATE DATABASE "{name}"')
    url = args.admin_url.rsplit("/", 1)[0] + f"/{name}"
    repo = open_repository(url)
    build(url, args.entries)
    service = AuditService(repo)
    n = args.entries
    root = service.root(n)
    rng = random.Random(5)
    incl, cons = [], []
    for _ in range(args.proofs):
        i = rng.randrange(n)
        t = time.perf_counter()
        proof = service.inclusion_proof(i, n)
        incl.append((time.perf_counter() - t) * 1000)
        assert verify_inclusion(leaf_hash(f"entry-{i}".encode()), i, n, proof, root)
        m = rng.randrange(1, n)
        t = time.perf_counter()
        cproof = service.consistency_proof(m, n)
        cons.append((time.perf_counter() - t) * 1000)
        assert verify_consistency(m, n, service.root(m), root, cproof)
    repo.close()

    def line(name: str, xs: list[float]) -> str:
        xs = sorted(xs)
        return (f"{name}: p50 {statistics.median(xs):.2f} ms, "
                f"p95 {xs[int(len(xs) * 0.95)]:.2f} ms, max {xs[-1]:.2f} ms")  # fmt: skip

    print(f"{platform.node()} {platform.processor() or platform.machine()}, "
          f"{n:,} entries, {args.proofs} proofs each (verified)")  # fmt: skip
    print(line("inclusion", incl))
    print(line("consistency", cons))


if __name__ == "__main__":
    main()
