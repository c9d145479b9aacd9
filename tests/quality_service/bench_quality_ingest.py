"""Ingest cost of data quality: 20 Synthea bundles through POST /fhir (in-process, SQLite),
with and without the quality service installed. Not a test (no timed assertions); run:

    python3 tests/quality_service/bench_quality_ingest.py [bundles] [rounds]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path[:0] = [str(Path(__file__).parent), str(Path(__file__).parents[1])]

from quality_service_helpers import Client, quality_app  # noqa: E402

from huitong.config import Settings  # noqa: E402
from huitong.server import create_app  # noqa: E402
from huitong.store import open_repository  # noqa: E402
from huitong_testdata import synthea_bundles  # noqa: E402


def run(bundles: list[dict], quality: bool) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        repo = open_repository(f"sqlite:///{tmp}/bench.db")
        if quality:
            client, _ = quality_app(repo)
        else:
            client = Client(create_app(repo, Settings.from_env({}, database_url="unused",
                                                               auth="off")))
        resources = sum(len(b.get("entry", [])) for b in bundles)
        start = time.perf_counter()
        for bundle in bundles:
            resp = client.post("/fhir", json=bundle)
            assert resp.status_code == 200, resp.text[:500]
        elapsed = time.perf_counter() - start
        client.close()
        repo.close()
        return elapsed, resources


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    bundles = [orjson.loads(raw) for raw in synthea_bundles(n)]
    results: dict[bool, list[float]] = {False: [], True: []}
    resources = 0
    for _ in range(rounds):
        for quality in (False, True):
            elapsed, resources = run(bundles, quality)
            results[quality].append(elapsed)
    off, on = min(results[False]), min(results[True])
    print(f"{n} bundles, {resources} resources, best of {rounds}")
    print(f"quality off: {off:.2f} s  ({resources / off:.0f} resources/s)")
    print(f"quality on:  {on:.2f} s  ({resources / on:.0f} resources/s)")
    print(f"overhead: {100 * (on - off) / off:.1f} %")


if __name__ == "__main__":
    main()
