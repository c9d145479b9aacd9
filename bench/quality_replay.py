"""The CPU translation and data quality add per resource, replayed without the store.

    python bench/quality_replay.py [--bundles 30] [--repeat 5] [--cache on|off]
                                   [--dialect postgresql|sqlite]

Synthea bundles are loaded once through the transaction executor (SQLite, identity,
translation and quality installed) while the inputs of the translation transform, the
quality check and both services' write hooks are recorded, in order, per transaction.
Those calls are then replayed ``--repeat`` times against fresh services and a stand-in
transaction (reads answer from what the replay wrote; statements are built, serialised and
dropped, not executed), each component's CPU time (``time.process_time``) added up per
call. The best repetition is reported as µs per resource: on the shared 2-core VM the
end-to-end benchmark (bench/quality_overhead.py) moves by ±50 ms/1k from run to run, while
this replay sees only this process's own work, so changes of a few µs show. Each input is
copied just before its call, so the replay runs on data in the CPU caches: its figures are
about two thirds of what the same calls cost inside the write path (bench/quality_profile.py
times them there). Compare versions with ``PYTHONPATH=<tree>/src`` on the same recording.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import gc
import pickle
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from huitong.clock import Clock, MonotonicClock  # noqa: E402
from huitong.config import Settings  # noqa: E402
from huitong.fhir.errors import FhirError  # noqa: E402
from huitong.mpi.service import IdentityService  # noqa: E402
from huitong.quality.service import QualityService  # noqa: E402
from huitong.server.bundle import run_transaction  # noqa: E402
from huitong.server.request import ServerContext  # noqa: E402
from huitong.store import open_repository  # noqa: E402
from huitong.store.repository import StoredResource  # noqa: E402
from huitong.terminology.write_path import TranslationService  # noqa: E402
from huitong_testdata import synthea_bundles  # noqa: E402

# One recorded call: (component, arguments after the transaction).
Event = tuple[str, tuple[Any, ...]]


def record(bundles: list[bytes], tmp: Path) -> tuple[list[list[Event]], int]:
    """Every call the two services received while ``bundles`` were loaded, by transaction,
    and the number of resources written."""
    repo = open_repository(f"sqlite:///{tmp / 'record.db'}")
    transactions: list[list[Event]] = []
    try:
        settings = Settings.from_env({}, database_url=str(repo), auth="off")
        ctx = ServerContext(repo, settings, repo.clock, repo.new_id)
        identity = IdentityService(repo, clock=ctx.clock, new_id=ctx.new_id)
        identity.install()
        TranslationService(repo, clock=ctx.clock).install()
        QualityService(repo, clock=ctx.clock, identity=identity).install()
        current: list[Event] = []

        def wrap(kind: str, fn: Callable[..., Any]) -> Callable[..., Any]:
            # A check or hook: its arguments as it received them (stored versions are
            # immutable; contents are copied, the store keeps using them).
            def recorded(tx: Any, *args: Any) -> Any:
                kept = tuple(a if isinstance(a, StoredResource) else copy.deepcopy(a)
                             for a in args)  # fmt: skip
                current.append((kind, kept))
                return fn(tx, *args)

            return recorded

        def wrap_transform(fn: Callable[..., Any]) -> Callable[..., Any]:
            def recorded(tx: Any, content: dict[str, Any]) -> Any:
                # The input as the transform saw it: its result may share the input's parts.
                current.append(("transform", (copy.deepcopy(content),)))
                return fn(tx, content)

            return recorded

        for by_name in repo._transforms.values():  # type: ignore[attr-defined]
            if "terminology" in by_name:
                by_name["terminology"] = wrap_transform(by_name["terminology"])
        repo._checks["quality"] = wrap("check", repo._checks["quality"])  # type: ignore[attr-defined]
        for by_name in repo._hooks.values():  # type: ignore[attr-defined]
            for name in ("quality", "terminology"):
                if name in by_name:
                    by_name[name] = wrap(f"hook:{name}", by_name[name])
        resources = 0
        for body in bundles:
            current = []
            response = run_transaction(ctx, orjson.loads(body))
            resources += len(response.get("entry", []))
            transactions.append(current)
        return transactions, resources
    finally:
        repo.close()


@dataclass(eq=False)  # hashed by identity, as the services' weak dictionaries need
class FakeTx:
    """What the services use of a transaction: reads of what was written, statements."""

    written: dict[tuple[str, str], StoredResource]
    statements: int = 0

    def read(self, resource_type: str, id: str, **_: Any) -> StoredResource | None:
        return self.written.get((resource_type, id))

    def execute(self, sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
        self.statements += 1
        return [(0,)]

    def execute_later(self, sql: str, params: Any = ()) -> None:
        self.statements += 1


class FakeRepo:
    """The repository as the services see it when installed (registrations, dialect)."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        self.transforms: dict[str, Any] = {}
        self.checks: dict[str, Any] = {}
        self.hooks: dict[str, Any] = {}
        self.commit_hooks: dict[str, Any] = {}

    def add_write_transform(self, name: str, types: Any, fn: Any) -> None:
        self.transforms[name] = fn

    def add_write_check(self, name: str, fn: Any) -> None:
        self.checks[name] = fn

    def add_write_hook(self, name: str, types: Any, fn: Any) -> None:
        self.hooks[name] = fn

    def add_commit_hook(self, name: str, fn: Any) -> None:
        self.commit_hooks[name] = fn

    def query(self, sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
        return []

    def search(self, query: Any) -> Any:
        return SimpleNamespace(total=0, matches=[])  # no ConceptMap stored


def _copy(value: Any) -> Any:
    """A fresh copy of a recorded input: through JSON (a tenth of ``copy.deepcopy``'s time,
    which made a replay mostly copying), ``deepcopy`` for anything JSON cannot carry."""
    try:
        copied = orjson.loads(orjson.dumps(value))
    except TypeError:
        return copy.deepcopy(value)
    return copied if copied == value else copy.deepcopy(value)


def replay(
    transactions: list[list[Event]], dialect: str, clock: Clock
) -> dict[str, float]:
    """One replay: CPU seconds per component."""
    repo = FakeRepo(dialect)
    translation = TranslationService(repo, clock=clock)  # type: ignore[arg-type]
    translation.install()
    translation._maps = translation._load((0, 0))
    translation._checked_at = clock()
    translation.reload_every_us = 1 << 62
    quality = QualityService(repo, clock=clock, reload_every_us=1 << 62)  # type: ignore[arg-type]
    quality.install()
    spent = {"transform": 0.0, "check": 0.0, "hook": 0.0, "commit": 0.0}
    transform = repo.transforms["terminology"]
    check = repo.checks["quality"]
    hooks = {"hook:quality": repo.hooks["quality"], "hook:terminology": repo.hooks["terminology"]}
    pt = time.process_time
    for events in transactions:
        tx = FakeTx({})
        for kind, args in events:
            if kind == "transform":
                content = _copy(args[0])
                start = pt()
                transform(tx, content)
                spent["transform"] += pt() - start
            elif kind == "check":
                content = _copy(args[0])
                start = pt()
                # A rejection is the check's answer (the recorded load itself had none).
                with contextlib.suppress(FhirError):
                    check(tx, content)
                spent["check"] += pt() - start
            else:
                stored, content = args
                content = _copy(content) if content is not None else None
                tx.written[(stored.resource_type, stored.id)] = stored
                start = pt()
                hooks[kind](tx, stored, content)
                spent["hook"] += pt() - start
        start = pt()
        for fn in repo.commit_hooks.values():
            fn(tx)
        spent["commit"] += pt() - start
    return spent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bundles", type=int, default=30)
    ap.add_argument("--repeat", type=int, default=5)
    # The recording (a load through the store: tens of seconds) is kept in the temporary
    # directory; record again (--cache off) after a change to what translation writes.
    ap.add_argument("--cache", choices=("on", "off"), default="on")
    ap.add_argument("--dialect", choices=("postgresql", "sqlite"), default="postgresql")
    args = ap.parse_args()
    cache = Path(tempfile.gettempdir()) / f"huitong-quality-replay-{args.bundles}.pickle"
    if args.cache == "on" and cache.exists():
        transactions, resources = pickle.loads(cache.read_bytes())
    else:
        bundles = list(synthea_bundles(args.bundles))
        with tempfile.TemporaryDirectory() as tmp:
            transactions, resources = record(bundles, Path(tmp))
        cache.write_bytes(pickle.dumps((transactions, resources)))
    clock: Clock = MonotonicClock()
    replay(transactions[:3], args.dialect, clock)  # warm-up: rule plans, UCUM registry
    best: dict[str, float] = {}
    for _ in range(args.repeat):
        gc.collect()
        spent = replay(transactions, args.dialect, clock)
        for k, v in spent.items():
            best[k] = min(best.get(k, v), v)
    total = sum(best.values())
    out = {k: round(1e6 * v / resources, 1) for k, v in best.items()}
    print(f"{resources} resources, best of {args.repeat}, µs per resource: {out}, "
          f"total {1e6 * total / resources:.1f}")


if __name__ == "__main__":
    main()
