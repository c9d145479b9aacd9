"""What translation and data quality cost on ingest: the same Synthea bundles posted as
transaction Bundles to the real app (in process, no network), on PostgreSQL, with
translation + quality rules on versus both off, in the same run.

    python bench/quality_overhead.py [--bundles 100] [--rounds 2] [--mpi on|off]
                                     [--engine postgresql|sqlite] [--profile on|off]
                                     [--split on|off] [--interleave] [--judge-backfill]

Each round loads the bundles once per mode into a fresh database; the order of the modes
reverses every round, so a busy neighbour on the shared machine hurts all alike. With ``--split
on`` (the default) the single-component modes (translation only, quality only) run in every
round too, beside off and on: measured once after the rounds, as they used to be, they ran
in a process whose unit caches the earlier loads had filled, and looked cheaper than their
sum. Reported per mode: the best round's resources/s on the wall clock and the client
process's CPU seconds per 1,000 resources (the Python work translation and quality add runs
there; the machine has 2 shared cores, so CPU time is the steadier figure). The warm-up
loads a patient bundle in every mode and waits for the UCUM registry, which a long-running
server builds once at start; then the collector is tuned and the start-up heap frozen, as
the server's lifespan does. ``--profile on`` runs one more load with pyinstrument and
prints where the "on" mode spends its time. ``--interleave`` loads "off" and "on" side by
side, bundle by bundle (each into its own database, the order swapped at every bundle), so
that the machine's changes of speed, which move whole rounds by up to 30 % here, fall on
both modes alike; it prints each round's cost and their mean. Results go to
``bench/results/quality_overhead-<engine>.json``.

Every Synthea record is history: its institution's first data reaches the benchmark's fresh
database at the start of the load, so the timeliness rules do not judge it (see
docs/operations.md). ``--judge-backfill`` loads with a region document that sets every
timeliness rule's ``judge_backfill``, as before go-live existed: nearly every record is then
judged late, a finding each.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg

ROOT = Path(__file__).resolve().parents[1]
# HUITONG_SRC: another tree's code (the session start's, say) measured by this script.
sys.path.insert(0, os.environ.get("HUITONG_SRC", str(ROOT / "src")))
sys.path.insert(1, str(ROOT / "tests"))
from huitong.config import Settings  # noqa: E402
from huitong.server import create_app  # noqa: E402
from huitong.store import open_repository  # noqa: E402
from huitong_testdata import synthea_bundles  # noqa: E402

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
RESULTS = ROOT / "bench" / "results"
MODES = {"off": {"translate": "off", "quality": "off"}, "on": {"translate": "on", "quality": "on"}}
# Set by --judge-backfill: a region document judging history too (see the docstring).
QUALITY_CONFIG: dict[str, str] = {}
# Single-component modes for --split: which of the two costs what.
SPLIT = {
    "translate": {"translate": "on", "quality": "off"},
    "quality": {"translate": "off", "quality": "on"},
}


def _database(engine: str, tmp: Path) -> tuple[str, str | None]:
    if engine == "sqlite":
        return f"sqlite:///{tmp / f'{uuid.uuid4().hex[:8]}.db'}", None
    name = f"hqa_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return ADMIN_URL.rsplit("/", 1)[0] + f"/{name}", name


def _drop(name: str | None) -> None:
    if name:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def load(
    bodies: list[bytes], mode: str, engine: str, mpi: str, tmp: Path, profiler: Any = None
) -> dict[str, float]:
    url, name = _database(engine, tmp)
    repo = open_repository(url)
    try:
        switches = MODES.get(mode) or SPLIT[mode]
        settings = Settings.from_env({}, database_url=url, auth="off", mpi=mpi, **switches,
                                     **QUALITY_CONFIG)  # fmt: skip
        app = create_app(repo, settings)
        loop = asyncio.new_event_loop()
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://bench", timeout=600
        )
        headers = {"content-type": "application/fhir+json"}
        resources = 0
        if profiler is not None:
            profiler.start()
        wall, cpu = time.perf_counter(), time.process_time()
        for body in bodies:
            r = loop.run_until_complete(client.post("/fhir", content=body, headers=headers))
            if r.status_code != 200:
                raise SystemExit(f"{mode}: HTTP {r.status_code}: {r.text[:400]}")
            resources += len(r.json().get("entry", []))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if profiler is not None:
            profiler.stop()
        loop.run_until_complete(client.aclose())
        loop.close()
        unmapped = repo.query("SELECT COUNT(*) FROM terminology_unmapped")[0][0]
        return {
            "resources": resources,
            "wall_s": round(wall, 2),
            "cpu_s": round(cpu, 2),
            "per_s": round(resources / wall, 1),
            "cpu_ms_per_1k": round(1000 * cpu / resources * 1000, 1),
            "unmapped_rows": int(unmapped),
        }
    finally:
        repo.close()
        _drop(name)


class _Loaded:
    """One mode's app on its own fresh database, kept open for an interleaved load."""

    def __init__(self, mode: str, engine: str, mpi: str, tmp: Path) -> None:
        self.url, self.name = _database(engine, tmp)
        self.repo = open_repository(self.url)
        settings = Settings.from_env(
            {}, database_url=self.url, auth="off", mpi=mpi, **MODES[mode], **QUALITY_CONFIG
        )
        self.loop = asyncio.new_event_loop()
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(self.repo, settings)),
            base_url="http://bench", timeout=600,
        )
        self.wall = self.cpu = 0.0
        self.resources = 0

    def post(self, body: bytes) -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        r = self.loop.run_until_complete(self.client.post(
            "/fhir", content=body, headers={"content-type": "application/fhir+json"}))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if r.status_code != 200:
            raise SystemExit(f"HTTP {r.status_code}: {r.text[:400]}")
        self.resources += len(r.json().get("entry", []))
        self.wall += wall
        self.cpu += cpu
        return wall, cpu

    def close(self) -> None:
        self.loop.run_until_complete(self.client.aclose())
        self.loop.close()
        self.repo.close()
        _drop(self.name)


def interleaved(bodies: list[bytes], engine: str, mpi: str, tmp: Path) -> dict[str, Any]:
    """Both modes loaded at once, bundle by bundle, each into its own database (the order
    of the two swapped at every bundle): each bundle's "on" is measured next to its "off",
    seconds apart, so a change in the machine's speed over minutes, which moves whole
    rounds by 30 % here, falls on both alike. Returns wall and CPU per mode and the median
    of the per-bundle ratios."""
    loaded = {m: _Loaded(m, engine, mpi, tmp) for m in MODES}
    ratios_wall: list[float] = []
    ratios_cpu: list[float] = []
    try:
        for i, body in enumerate(bodies):
            order = ("off", "on") if i % 2 == 0 else ("on", "off")
            got = {m: loaded[m].post(body) for m in order}
            ratios_wall.append(got["on"][0] / got["off"][0])
            ratios_cpu.append(got["on"][1] / max(got["off"][1], 1e-6))
        off, on = loaded["off"], loaded["on"]
        findings = int(on.repo.query("SELECT COUNT(*) FROM quality_findings")[0][0])
        return {
            "resources": on.resources,
            "findings": findings,
            "off_per_s": round(off.resources / off.wall, 1),
            "on_per_s": round(on.resources / on.wall, 1),
            "throughput_cost_pct": round(100 * (1 - off.wall / on.wall), 1),
            "cpu_cost_pct": round(100 * (on.cpu / off.cpu - 1), 1),
            "median_bundle_wall_ratio": round(sorted(ratios_wall)[len(ratios_wall) // 2], 3),
            "median_bundle_cpu_ratio": round(sorted(ratios_cpu)[len(ratios_cpu) // 2], 3),
        }
    finally:
        for one in loaded.values():
            one.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bundles", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--mpi", choices=("on", "off"), default="on")
    ap.add_argument("--engine", choices=("postgresql", "sqlite"), default="postgresql")
    ap.add_argument("--profile", choices=("on", "off"), default="off")
    ap.add_argument("--split", choices=("on", "off"), default="on")
    ap.add_argument("--interleave", action="store_true",
                    help="load both modes bundle by bundle, side by side, --rounds times")
    ap.add_argument("--judge-backfill", action="store_true",
                    help="judge the timeliness of history too (every record is history here)")
    args = ap.parse_args()
    import tempfile

    if args.judge_backfill:
        from huitong.quality.library import default_rules

        document = {"region": "bench", "rules": {
            r.id: {"params": {"judge_backfill": True}} for r in default_rules()
            if "judge_backfill" in r.params}}  # fmt: skip
        config = Path(tempfile.mkdtemp()) / "judge-backfill.json"
        config.write_text(json.dumps(document))
        QUALITY_CONFIG["quality_config"] = str(config)

    bodies = list(synthea_bundles(args.bundles))
    # Parse once so every mode posts exactly the same bytes (orjson round trip is stable).
    bodies = [orjson.dumps(orjson.loads(b)) for b in bodies]
    modes = [*MODES, *SPLIT] if args.split == "on" else list(MODES)
    runs: dict[str, list[dict[str, float]]] = {m: [] for m in modes}
    with tempfile.TemporaryDirectory() as tmp:
        # Warm-up, not timed: the UCUM unit registry and the rule library are built once per
        # process (seconds), which a long-running server pays once at start. The first
        # bundles are the hospitals' and practitioners' (no measurements): three of them
        # reach a patient's; every mode is loaded once.
        for mode in modes:
            load(bodies[:3], mode, args.engine, args.mpi, Path(tmp))
        from huitong.terminology import write_path

        for thread in write_path._warming:  # the registry is built in the background
            thread.join()
        # What a server's lifespan does once its start-up heap is built (huitong/runtime.py):
        # the in-process transport runs no lifespan, so without this the loads ran with
        # the interpreter's default collector, which no Huitong server uses.
        from huitong.runtime import tune_collector

        tune_collector()
        if args.interleave:
            paired = []
            for rnd in range(args.rounds):
                paired.append(interleaved(bodies, args.engine, args.mpi, Path(tmp)))
                print(f"round {rnd + 1} interleaved: {paired[-1]}", flush=True)
            total = {k: round(sum(r[k] for r in paired) / len(paired), 1)
                     for k in ("throughput_cost_pct", "cpu_cost_pct")}
            print(json.dumps({"interleaved_rounds": paired, "mean": total,
                              "judge_backfill": args.judge_backfill}, indent=2))
            return
        for rnd in range(args.rounds):
            for mode in modes if rnd % 2 == 0 else modes[::-1]:
                result = load(bodies, mode, args.engine, args.mpi, Path(tmp))
                runs[mode].append(result)
                print(f"round {rnd + 1} {mode:>9}: {result}", flush=True)
        if args.profile == "on":
            from pyinstrument import Profiler

            profiler = Profiler(interval=0.002)
            load(bodies, "on", args.engine, args.mpi, Path(tmp), profiler)
            print(profiler.output_text(unicode=True, color=False, show_all=False))
    best = {m: max(r, key=lambda x: x["per_s"]) for m, r in runs.items()}
    split = {m: min(x["cpu_ms_per_1k"] for x in runs[m]) for m in SPLIT if runs.get(m)}
    cpu = {m: min(x["cpu_ms_per_1k"] for x in r) for m, r in runs.items()}
    summary = {
        "bundles": args.bundles,
        "rounds": args.rounds,
        "engine": args.engine,
        "mpi": args.mpi,
        "judge_backfill": args.judge_backfill,
        "resources": best["on"]["resources"],
        "off_per_s": best["off"]["per_s"],
        "on_per_s": best["on"]["per_s"],
        "throughput_cost_pct": round(100 * (1 - best["on"]["per_s"] / best["off"]["per_s"]), 1),
        "off_cpu_ms_per_1k": cpu["off"],
        "on_cpu_ms_per_1k": cpu["on"],
        "cpu_cost_pct": round(100 * (cpu["on"] / cpu["off"] - 1), 1),
        "unmapped_rows": best["on"]["unmapped_rows"],
        "split_cpu_ms_per_1k": split,
        "split_per_s": {m: best[m]["per_s"] for m in SPLIT if m in best},
        "machine": f"{platform.node()} {platform.machine()} {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "runs": runs,
    }
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"quality_overhead-{args.engine}.json"
    out.write_text(json.dumps(summary, indent=2, ensure_ascii=False))
    print(json.dumps({k: v for k, v in summary.items() if k != "runs"}, indent=2))


if __name__ == "__main__":
    main()
