"""Where translation and data quality spend their time on the write path: Synthea bundles run
through the transaction executor directly (no HTTP, no threads), so cProfile sees all the work.

    python bench/quality_profile.py [--bundles 20] [--engine sqlite|postgresql]
                                    [--mode off|translate|quality|both] [--top 40]
                                    [--profile on|off]

The services are installed the way :func:`huitong.server.create_app` installs them (identity,
then translation, then quality), without audit and authentication. Prints per mode the CPU
ms per 1,000 resources, the CPU time of every registered transform, check, write hook and
commit hook (the store's last flush of buffered rows is timed on its own, as
``commit:store-flush``, before the components' commit hooks; each timed call adds two
``time.process_time`` calls, 2–5 µs on the shared VM), the garbage collector's time by
generation (a full collection walks the whole heap, 150–300 ms here, and lands in a short
run or not: it makes single runs lumpy)
and, with ``--profile on``, the functions with the most own and cumulative time
(``--out`` keeps the profiles for ``pstats``). It also reports the CPU time of the run's
PostgreSQL backends per 1,000 resources (``db_cpu_ms_per_1k``, from ``/proc``).

``valgrind --tool=callgrind --instr-atstart=no python bench/quality_profile.py --callgrind
--profile off --mode off`` (then ``--mode both``) counts the instructions of the measured
loop alone: the same count for the same code and bundles whatever else the machine runs,
so two trees (``HUITONG_SRC=/tmp/base/src``) or two modes compare to the instruction.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import pstats
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, os.environ.get("HUITONG_SRC", str(ROOT / "src")))
sys.path.insert(1, str(ROOT / "tests"))
sys.path.insert(2, str(ROOT / "bench"))
from _server import cpu_seconds, pg_backends  # noqa: E402

from huitong.config import Settings  # noqa: E402
from huitong.mpi.service import IdentityService  # noqa: E402
from huitong.quality.service import QualityService  # noqa: E402
from huitong.server.bundle import run_transaction  # noqa: E402
from huitong.server.request import ServerContext  # noqa: E402
from huitong.store import open_repository  # noqa: E402
from huitong.terminology.write_path import TranslationService  # noqa: E402
from huitong_testdata import synthea_bundles  # noqa: E402

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
MODES = {
    "off": (False, False),
    "translate": (True, False),
    "quality": (False, True),
    "both": (True, True),
}


def _database(engine: str, tmp: Path) -> tuple[str, str | None]:
    if engine == "sqlite":
        return f"sqlite:///{tmp / f'{uuid.uuid4().hex[:8]}.db'}", None
    name = f"hqa_prof_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return ADMIN_URL.rsplit("/", 1)[0] + f"/{name}", name


def _drop(name: str | None) -> None:
    if name:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class GcTimer:
    """CPU time the cyclic garbage collector takes, by generation (gc.callbacks)."""

    def __init__(self) -> None:
        self.seconds = [0.0, 0.0, 0.0]
        self.runs = [0, 0, 0]
        self._start = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.process_time()
        else:
            self.seconds[info["generation"]] += time.process_time() - self._start
            self.runs[info["generation"]] += 1


def _timed(fn: Any, name: str, spent: dict[str, float]) -> Any:
    def wrapper(*args: Any) -> Any:
        start = time.process_time()
        try:
            return fn(*args)
        finally:
            spent[name] = spent.get(name, 0.0) + time.process_time() - start

    return wrapper


def time_hooks(repo: Any, spent: dict[str, float]) -> None:
    """Wrap every transform, check, write hook and commit hook the services registered so
    their CPU time is added up by name (the store's own work is what is left)."""
    for by_name in repo._transforms.values():
        for name, fn in list(by_name.items()):
            by_name[name] = _timed(fn, f"transform:{name}", spent)
    for name, fn in list(repo._checks.items()):
        repo._checks[name] = _timed(fn, f"check:{name}", spent)
    for by_name in repo._hooks.values():
        for name, fn in list(by_name.items()):
            by_name[name] = _timed(fn, f"hook:{name}", spent)
    for name, fn in list(repo._commit_hooks.items()):
        repo._commit_hooks[name] = _timed(fn, f"commit:{name}", spent)
    # The store's own last flush, timed first: a commit hook's statement would otherwise
    # flush the buffered resource rows and count their COPY as its own.
    hooks = dict(repo._commit_hooks)
    repo._commit_hooks.clear()
    repo._commit_hooks["store-flush"] = _timed(lambda tx: tx.flush(), "commit:store-flush", spent)
    repo._commit_hooks.update(hooks)


def _callgrind(on: bool) -> None:
    """Switch callgrind's instrumentation of this process (under valgrind only)."""
    subprocess.run(["callgrind_control", "-i", "on" if on else "off", str(os.getpid())],
                   check=True, capture_output=True)


def run(
    bundles: list[bytes], mode: str, engine: str, tmp: Path, profiler: Any = None,
    callgrind: bool = False,
) -> dict[str, float]:
    """Load ``bundles`` into a fresh database with ``mode``'s services; CPU and wall time."""
    translate, quality = MODES[mode]
    url, name = _database(engine, tmp)
    repo = open_repository(url)
    try:
        settings = Settings.from_env({}, database_url=url, auth="off")
        ctx = ServerContext(repo, settings, repo.clock, repo.new_id)
        identity = IdentityService(repo, clock=ctx.clock, new_id=ctx.new_id)
        identity.install()
        if translate:
            TranslationService(repo, clock=ctx.clock).install()
        if quality:
            QualityService(repo, clock=ctx.clock, identity=identity).install()
        spent: dict[str, float] = {}
        time_hooks(repo, spent)
        resources = 0
        timer = GcTimer()
        gc.collect()
        gc.callbacks.append(timer)
        # The pool's connections exist after the services' set-up; a backend opened later
        # (none is, one bundle at a time) would go uncounted.
        backends = {p: cpu_seconds(p) for p in pg_backends(url)}
        if callgrind:
            _callgrind(True)
        wall, cpu = time.perf_counter(), time.process_time()
        if profiler is not None:
            profiler.enable()
        for body in bundles:
            response = run_transaction(ctx, orjson.loads(body))
            resources += len(response.get("entry", []))
        if profiler is not None:
            profiler.disable()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if callgrind:
            _callgrind(False)
        db_cpu = sum(cpu_seconds(p) - backends.get(p, 0.0) for p in pg_backends(url))
        gc.callbacks.remove(timer)
        return {
            "mode": mode,
            "resources": resources,
            "cpu_ms_per_1k": round(1000 * cpu / resources * 1000, 1),
            "db_cpu_ms_per_1k": round(1000 * db_cpu / resources * 1000, 1),
            "per_s": round(resources / wall, 1),
            "gc_ms_per_1k": [round(1e6 * t / resources, 1) for t in timer.seconds],
            "gc_runs": timer.runs,
            "hooks_ms_per_1k": {k: round(1e6 * v / resources, 1) for k, v in spent.items()},
            "heap_objects": len(gc.get_objects()),
        }
    finally:
        repo.close()
        _drop(name)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bundles", type=int, default=20)
    ap.add_argument("--engine", choices=("postgresql", "sqlite"), default="sqlite")
    ap.add_argument("--mode", choices=(*MODES, "all"), default="both")
    ap.add_argument("--top", type=int, default=40)
    ap.add_argument("--profile", choices=("on", "off"), default="on")
    ap.add_argument("--out", help="also save each mode's profile as <out>-<mode>.prof")
    ap.add_argument("--callgrind", action="store_true",
                    help="under valgrind --instr-atstart=no: count the measured loop only")
    args = ap.parse_args()
    bundles = list(synthea_bundles(args.bundles))
    modes = list(MODES) if args.mode == "all" else [args.mode]
    with tempfile.TemporaryDirectory() as tmp:
        run(bundles[:3], "both", args.engine, Path(tmp))  # warm-up: UCUM registry, rules
        from huitong.runtime import tune_collector

        tune_collector()  # as a server's lifespan does, once its start-up heap is built
        for mode in modes:
            profiler = cProfile.Profile() if args.profile == "on" else None
            print(run(bundles, mode, args.engine, Path(tmp), profiler, args.callgrind),
                  flush=True)
            if profiler is not None:
                if args.out:
                    profiler.dump_stats(f"{args.out}-{mode}.prof")
                stats = pstats.Stats(profiler).strip_dirs()
                stats.sort_stats("tottime").print_stats(args.top)
                stats.sort_stats("cumulative").print_stats(args.top)


if __name__ == "__main__":
    main()
