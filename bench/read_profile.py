"""Per-request cost of ``GET /fhir/{type}/{id}`` inside the process, without HTTP or load
generator: the ASGI app is called directly (as uvicorn would) over a loaded database.

    python bench/read_profile.py --db postgresql://…/db [--requests 3000] [--profile]

Reports wall time and this process's CPU time per request (CPU time is what a loaded
machine distorts least), and with ``--profile`` a pyinstrument profile of the loop. Use it
to compare code versions on the same database (e.g. ``PYTHONPATH=/path/to/other/src``).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from typing import Any

from huitong.config import Settings
from huitong.server import create_app
from huitong.store import open_repository


async def _call(app: Any, path: str) -> int:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"bench"), (b"accept", b"*/*")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    status = 0
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def _loop(app: Any, paths: list[str]) -> None:
    for p in paths:
        status = await _call(app, p)
        if status != 200:
            raise SystemExit(f"{p}: HTTP {status}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--db", required=True)
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--audit", action="store_true", help="keep the audit log of reads on")
    args = ap.parse_args()
    repo = open_repository(args.db, upgrade=False)
    # The repository's own read path: components that watch reads (the audit log) are off
    # unless asked for, where this version of the code has them.
    extra = {} if args.audit or "audit" not in Settings.__dataclass_fields__ else {"audit": "off"}
    if "translate" in Settings.__dataclass_fields__:
        # Reads do not translate; its start-up thread (the UCUM registry, ~3.5 s of CPU)
        # would otherwise run inside the measured loop and count as read cost.
        extra["translate"] = "off"
    settings = Settings.from_env(
        {}, database_url=args.db, mpi="off", quality="off", auth="off", **extra
    )
    app = create_app(repo, settings)
    rows = _ids(args.db)
    rnd = random.Random(7)
    paths = [
        f"/fhir/{t}/{i}" for t, i in (rows[rnd.randrange(len(rows))] for _ in range(args.requests))
    ]
    asyncio.run(_loop(app, paths[:200]))  # warm-up: connections, prepared statements
    profiler = None
    if args.profile:
        from pyinstrument import Profiler

        profiler = Profiler(async_mode="enabled")
        profiler.start()
    w0, c0 = time.perf_counter(), time.process_time()
    asyncio.run(_loop(app, paths))
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    if profiler is not None:
        profiler.stop()
        print(profiler.output_text(unicode=True, color=False, show_all=False))
    n = len(paths)
    print(
        f"{n} reads: {wall / n * 1e6:.0f} µs wall, {cpu / n * 1e6:.0f} µs CPU per request "
        f"({n / wall:.0f} req/s in one sequential client)"
    )
    repo.close()


def _ids(url: str) -> list[tuple[str, str]]:
    import psycopg

    with psycopg.connect(url) as conn:
        return [
            tuple(r)
            for r in conn.execute(  # type: ignore[misc]
                "SELECT res_type, res_id FROM resources WHERE res_type IN ('Patient', "
                "'Observation', 'Encounter') AND deleted = FALSE LIMIT 50000"
            ).fetchall()
        ]


if __name__ == "__main__":
    main()
