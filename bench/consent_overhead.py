"""What consent enforcement adds to each request (issue 5): loading a clinician's share-code
grants and break-glass sessions (one query, run by server/authn.py on every clinician
request) with 10,000 rows in each table, and one rate-limit bucket take (in-process, Redis).

    python3 bench/consent_overhead.py [--pg postgresql://postgres@127.0.0.1:5432/postgres]
                                      [--redis redis://127.0.0.1:6379/15]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

from huitong.access.rate_limit import Limit, LocalBuckets, RedisBuckets
from huitong.access.share_codes import load_access_grants
from huitong.store import open_repository

ROWS = 10_000
NOW = 1_800_000_000_000_000


def _fill(repo: object) -> None:
    with repo.transaction() as tx:  # type: ignore[attr-defined]
        for i in range(ROWS):
            tx.execute(
                "INSERT INTO access_share_codes (id, code_hash, patient_id, issued_by, "
                "access_us, created_at, expires_at, redeemed_at, redeemed_by, grant_until) "
                "VALUES (?, ?, ?, 'u', 1, ?, ?, ?, ?, ?)",
                (f"c{i}", f"h{i}", f"p{i}", NOW, NOW + 1, NOW, f"user{i % 500}", NOW + 10**9),
            )
            tx.execute(
                "INSERT INTO access_break_glass (id, user_id, patient_id, reason, started_at, "
                "until) VALUES (?, ?, ?, 'emergency reason', ?, ?)",
                (f"b{i}", f"user{i % 500}", f"p{i}", NOW, NOW + (10**9 if i % 2 else -1)),
            )


def _time(fn: object, n: int) -> tuple[float, float]:
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        fn()  # type: ignore[operator]
        samples.append((time.perf_counter() - t) * 1e6)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/15")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        urls = {"sqlite": f"sqlite:///{Path(tmp) / 'b.db'}"}
        name = f"huitong_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(args.pg, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        urls["postgresql"] = args.pg.rsplit("/", 1)[0] + f"/{name}"
        try:
            for engine, url in urls.items():
                repo = open_repository(url)
                _fill(repo)
                if engine == "postgresql":
                    with psycopg.connect(url, autocommit=True) as conn:
                        conn.execute("ANALYZE access_share_codes")
                        conn.execute("ANALYZE access_break_glass")
                med, p99 = _time(lambda r=repo: load_access_grants(r, "user7", NOW), 2000)
                print(f"load_access_grants {engine}: median {med:.0f} µs, p99 {p99:.0f} µs")
                repo.close()
        finally:
            with psycopg.connect(args.pg, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    local = LocalBuckets()
    limit = Limit(10**9, 60.0)
    med, p99 = _time(lambda: local.take("fhir:client:x", limit), 20000)
    print(f"rate limit in-process take: median {med:.1f} µs, p99 {p99:.1f} µs")

    async def redis_run() -> tuple[float, float]:
        shared = RedisBuckets(args.redis)
        samples = []
        for _ in range(2000):
            t = time.perf_counter()
            await shared.take(f"bench:{uuid.uuid4().hex[:4]}", limit)
            samples.append((time.perf_counter() - t) * 1e6)
        await shared.close()
        samples.sort()
        return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]

    med, p99 = asyncio.run(redis_run())
    print(f"rate limit Redis take: median {med:.0f} µs, p99 {p99:.0f} µs")


if __name__ == "__main__":
    main()
