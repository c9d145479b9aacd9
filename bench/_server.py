"""Run ``huitong serve`` in a child process for benchmarks, and watch its memory."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from types import TracebackType

import httpx
import psycopg

from huitong.runtime import die_with_parent

ADMIN_URL = os.environ.get("HUITONG_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def fresh_database(engine: str) -> str:
    """A new empty database URL on ``engine``."""
    if engine == "sqlite":
        return f"sqlite:///{Path(tempfile.mkdtemp(prefix='huitong-bench-')) / 'bench.db'}"
    name = f"huitong_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def _descendants(pid: int) -> list[int]:
    out: list[int] = []
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return out
    for child in map(int, children):
        out += [child, *_descendants(child)]
    return out


def _kb(pid: int, file: str, field: str) -> int | None:
    """A ``field: N kB`` line of ``/proc/<pid>/<file>`` (None once the process is gone)."""
    try:
        for line in Path(f"/proc/{pid}/{file}").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _rss_kb(pid: int) -> int | None:
    return _kb(pid, "status", "VmRSS:")


def _pss_kb(pid: int) -> int | None:
    return _kb(pid, "smaps_rollup", "Pss:")


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process (0 once it has gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pg_backends(url: str) -> list[int]:
    """Process ids of the server's PostgreSQL backends (local server only; none on SQLite)."""
    if url.startswith("sqlite"):
        return []
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'huitong' "
            "AND datname = current_database()"
        ).fetchall()
    return [int(r[0]) for r in rows]


def cpu_snapshot(server_pid: int | None, url: str) -> dict[str, dict[int, float]]:
    """CPU seconds so far of the server's processes and of its PostgreSQL backends. On a
    shared machine CPU per unit of work is the figure other load distorts least."""
    pids = [server_pid, *_descendants(server_pid)] if server_pid else []
    return {"server": {p: cpu_seconds(p) for p in pids},
            "db": {p: cpu_seconds(p) for p in pg_backends(url)}}


def cpu_spent(before: dict[str, dict[int, float]],
              after: dict[str, dict[int, float]]) -> dict[str, float]:
    """CPU seconds between two snapshots; a process that appeared in between started from
    zero (a backend that ended in between is not counted: take ``after`` while it runs)."""
    return {k: sum(v - before[k].get(p, 0.0) for p, v in after[k].items()) for k in after}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """``with ServerProcess(url) as s:`` — a running server at ``s.base`` (…/fhir)."""

    def __init__(self, database_url: str, *, extra_env: dict[str, str] | None = None) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}/fhir"
        self._url = database_url
        # A loopback benchmark server: no tokens (HUITONG_AUTH=off refuses other addresses).
        self._env = {**os.environ, "HUITONG_AUTH": "off", **(extra_env or {})}
        self._peak_kb = 0
        self._peak_process_kb = 0
        self._peak_pss_kb = 0
        self._stop = threading.Event()

    def __enter__(self) -> ServerProcess:
        # PostgreSQL is never migrated by `serve`; do it as an operator would.
        subprocess.run(
            [sys.executable, "-m", "huitong", "db", "upgrade", "--db", self._url],
            env=self._env, check=True, stdout=subprocess.DEVNULL,
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "huitong", "serve", "--db", self._url, "--port", str(self.port)],
            env=self._env, stdout=subprocess.DEVNULL, preexec_fn=die_with_parent,
        )
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(f"{self.base}/metadata", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            self.proc.kill()
            raise RuntimeError("server did not start")
        threading.Thread(target=self._sample, daemon=True).start()
        return self

    def _sample(self) -> None:
        """Every 0.2 s: the resident memory of the server and of each of its worker processes
        (``--workers N`` runs N children beside a small supervisor); the peak of their sum is
        the server's memory, the peak of any one process is reported beside it."""
        while not self._stop.is_set():
            pids = [self.proc.pid, *_descendants(self.proc.pid)]
            sizes = [_rss_kb(pid) for pid in pids]
            if sizes[0] is None:
                return
            known = [kb for kb in sizes if kb is not None]
            self._peak_kb = max(self._peak_kb, sum(known))
            self._peak_process_kb = max(self._peak_process_kb, max(known))
            pss = [kb for kb in map(_pss_kb, pids) if kb is not None]
            self._peak_pss_kb = max(self._peak_pss_kb, sum(pss))
            time.sleep(0.2)

    def peak_rss_mb(self) -> float:
        """Peak resident memory of the whole server: its processes together."""
        return self._peak_kb / 1024

    def peak_pss_mb(self) -> float:
        """Peak proportional set size of the whole server: memory its processes share (the
        code and data a worker inherited from its supervisor) counted once, not per process,
        which the sum of resident sizes does."""
        return self._peak_pss_kb / 1024

    def peak_process_rss_mb(self) -> float:
        """Peak resident memory of its largest single process."""
        return self._peak_process_kb / 1024

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
