"""Ingest benchmark: the Synthea bundles loaded over HTTP as transaction Bundles.

    python bench/ingest.py --engine sqlite|postgresql [--limit N] [--clients 2] [--copies 1]

Starts ``huitong serve`` on a fresh database, posts every bundle from
``../shared/data/synthea-r4/synthea-r4-617-bundles.tar.gz`` (hospital and practitioner
bundles first) with ``--clients`` concurrent connections, samples the server's resident
memory, and prints resources/s. On PostgreSQL it then loads the same resources with
PostgreSQL's own ``COPY`` into a bare ``jsonb`` table in the same run, as the ceiling to
compare against. ``--copies K`` loads the data K times with fresh ids (every id and
``urn:uuid`` rewritten), for the ten-times-the-load searches. Results go to
``bench/results/ingest-<engine>.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import sys
import tarfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import ServerProcess, cpu_snapshot, cpu_spent, fresh_database

ROOT = Path(__file__).resolve().parents[1]
ARCHIVE = ROOT.parent / "shared" / "data" / "synthea-r4" / "synthea-r4-617-bundles.tar.gz"
RESULTS = ROOT / "bench" / "results"
_UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def read_bundles(limit: int | None) -> list[bytes]:
    with tarfile.open(ARCHIVE) as tf:
        members = [m for m in tf.getmembers() if m.isfile()]  # some names end in .json"
        first = ("hospitalInformation", "practitionerInformation")
        members.sort(key=lambda m: 0 if m.name.rsplit("/", 1)[-1].startswith(first) else 1)
        if limit:
            members = members[:limit]
        out = []
        for m in members:
            f = tf.extractfile(m)
            assert f is not None
            out.append(f.read())
        return out


def fresh_ids(data: bytes, salt: str) -> bytes:
    """The same bundle with every UUID replaced consistently (uuid5 of the old one + salt)."""
    cache: dict[bytes, bytes] = {}

    def sub(m: re.Match[bytes]) -> bytes:
        old = m.group(0)
        new = cache.get(old)
        if new is None:
            new = str(uuid.uuid5(uuid.NAMESPACE_URL, salt + old.decode())).encode()
            cache[old] = new
        return new

    return _UUID.sub(sub, data)


def count_resources(bundles: list[bytes]) -> int:
    return sum(len(json.loads(b).get("entry", [])) for b in bundles)


def post_all(base: str, bundles: list[bytes], clients: int) -> tuple[float, list[str]]:
    errors: list[str] = []
    lock = threading.Lock()
    local = threading.local()

    def post(b: bytes) -> None:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(timeout=600)
        r = client.post(base, content=b, headers={"Content-Type": "application/fhir+json"})
        if r.status_code >= 400:
            with lock:
                errors.append(f"{r.status_code} {r.text[:300]}")

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(post, bundles))
    return time.perf_counter() - t0, errors


def copy_baseline(url: str, bundles: list[bytes]) -> tuple[float, int]:
    """Load every entry resource into a bare jsonb table with COPY (PostgreSQL's ceiling)."""
    docs = [json.dumps(e["resource"]) for b in bundles for e in json.loads(b).get("entry", [])]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_copy_baseline")
        conn.execute("CREATE TABLE bench_copy_baseline (doc jsonb)")
        t0 = time.perf_counter()
        with conn.cursor() as cur, cur.copy("COPY bench_copy_baseline (doc) FROM STDIN") as cp:
            for d in docs:
                cp.write_row((d,))
        elapsed = time.perf_counter() - t0
        conn.execute("DROP TABLE bench_copy_baseline")
    return elapsed, len(docs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--engine", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--limit", type=int, default=None, help="bundles to load (default: all)")
    ap.add_argument("--clients", type=int, default=2)
    ap.add_argument("--copies", type=int, default=1)
    ap.add_argument("--keep", help="database URL to load into and keep (for search benches)")
    ap.add_argument("--workers", type=int, default=1, help="server processes (HUITONG_WORKERS)")
    ap.add_argument("--bare", action="store_true",
                    help="identity service and quality rules off: the repository's own cost")
    ap.add_argument("--no-quality", action="store_true",
                    help="translation and quality rules off, everything else on (issue 6's "
                         "cost is the difference from a run without this)")
    ap.add_argument("--no-copy", action="store_true", help="skip the COPY baseline")
    args = ap.parse_args()
    if not ARCHIVE.exists():
        sys.exit(f"shared Synthea data not found at {ARCHIVE}")

    bundles = read_bundles(args.limit)
    if args.copies > 1:
        bundles = bundles + [
            fresh_ids(b, f"copy{k}") for k in range(1, args.copies) for b in bundles
        ]
    n = count_resources(bundles)
    url = args.keep or fresh_database(args.engine)
    env = {"HUITONG_WORKERS": str(args.workers)}
    if args.bare:
        env |= {"HUITONG_MPI": "off", "HUITONG_QUALITY": "off"}
    if args.no_quality:
        env |= {"HUITONG_TRANSLATE": "off", "HUITONG_QUALITY": "off"}
    with ServerProcess(url, extra_env=env) as server:
        # The backends the server opens during the load count from zero; the snapshot after
        # is taken while they still run (they end with the server).
        before, client0 = cpu_snapshot(server.proc.pid, url), time.process_time()
        elapsed, errors = post_all(server.base, bundles, args.clients)
        after, client_cpu = cpu_snapshot(server.proc.pid, url), time.process_time() - client0
        peak_mb, peak_process_mb = server.peak_rss_mb(), server.peak_process_rss_mb()
        peak_pss_mb = server.peak_pss_mb()
    spent = cpu_spent(before, after)
    result = {
        "engine": args.engine,
        "bundles": len(bundles),
        "resources": n,
        "seconds": round(elapsed, 2),
        "resources_per_s": round(n / elapsed),
        "errors": len(errors),
        "first_errors": errors[:3],
        # CPU per resource: what a loaded machine distorts least, and where the time goes.
        "server_cpu_us_per_resource": round(spent["server"] * 1e6 / max(n, 1)),
        "db_cpu_us_per_resource": round(spent["db"] * 1e6 / max(n, 1)),
        "client_cpu_us_per_resource": round(client_cpu * 1e6 / max(n, 1)),
        "server_peak_rss_mb": round(peak_mb),
        "server_peak_process_rss_mb": round(peak_process_mb),
        "server_peak_pss_mb": round(peak_pss_mb),
        "clients": args.clients,
        "workers": args.workers,
        "pipeline": "bare" if args.bare else (
            "identity" if args.no_quality else "identity+translation+quality"),
        "machine": f"{platform.node()} {platform.machine()} {platform.processor()}".strip(),
        "date": time.strftime("%Y-%m-%d"),
    }
    if args.keep and args.engine == "postgresql":
        # Kept for the read benchmarks: give the planner its statistics, as autovacuum would
        # on a production server (it may be off on a test machine; here it was).
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ANALYZE")
    if args.engine == "postgresql" and not args.no_copy:
        copy_s, copy_n = copy_baseline(url, bundles)
        result["copy_baseline_resources_per_s"] = round(copy_n / copy_s)
        result["fraction_of_copy"] = round(result["resources_per_s"] / (copy_n / copy_s), 3)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"ingest-{args.engine}.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    if errors:
        sys.exit(1)


if __name__ == "__main__":
    main()
